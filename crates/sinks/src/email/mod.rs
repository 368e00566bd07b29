//! The email sink: SMTP through lettre — STARTTLS (required, not opportunistic), implicit TLS or,
//! for a relay on loopback, none; optional authentication. One message per event to every `to`,
//! with a subject and a plain-text body written for the event (`render`).

use kevlar_config::{EmailSink as Config, SmtpSecurity};
use kevlar_core::SecurityEvent;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use crate::{render, Sink, SinkError};

pub struct EmailSink {
    transport: SmtpTransport,
    from: Mailbox,
    to: Vec<Mailbox>,
}

fn mailbox(s: &str) -> Result<Mailbox, SinkError> {
    s.parse().map_err(|e| SinkError::config(format!("`{s}` is not an email address: {e}")))
}

/// An SMTP error without anything the server echoed of the credentials.
fn smtp_error(e: &lettre::transport::smtp::Error) -> SinkError {
    let msg = if e.is_permanent() || e.is_transient() {
        format!("SMTP server refused: {}", e.status().map(|c| c.to_string()).unwrap_or_default())
    } else {
        let mut m = e.to_string();
        if let Some(src) = std::error::Error::source(e) {
            m = format!("{m}: {src}");
        }
        m
    };
    if e.is_permanent() {
        SinkError::refused(msg)
    } else if e.is_transient() {
        SinkError::rejected(msg)
    } else {
        SinkError::connect(msg)
    }
}

impl EmailSink {
    pub fn new(cfg: &Config) -> Result<Self, SinkError> {
        let mut builder = SmtpTransport::builder_dangerous(&cfg.server).port(cfg.port).timeout(Some(cfg.timeout));
        if cfg.security != SmtpSecurity::None {
            let mut tls = TlsParameters::builder(cfg.server.clone());
            if let Some(path) = &cfg.ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| SinkError::config(format!("cannot read {}: {e}", path.display())))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| SinkError::config(format!("{}: not a PEM certificate: {e}", path.display())))?;
                tls = tls.add_root_certificate(cert);
            }
            let tls = tls.build_rustls().map_err(|e| SinkError::config(format!("TLS settings: {e}")))?;
            builder = builder.tls(match cfg.security {
                SmtpSecurity::Tls => Tls::Wrapper(tls),
                _ => Tls::Required(tls),
            });
        }
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(EmailSink {
            transport: builder.build(),
            from: mailbox(&cfg.from)?,
            to: cfg.to.iter().map(|t| mailbox(t)).collect::<Result<_, _>>()?,
        })
    }

    /// Sends one plain-text message to `to`.
    pub fn deliver(&self, to: &[Mailbox], subject: &str, body: String) -> Result<(), SinkError> {
        let mut m = Message::builder().from(self.from.clone()).subject(subject).header(ContentType::TEXT_PLAIN);
        for t in to {
            m = m.to(t.clone());
        }
        let msg = m.body(body).map_err(|e| SinkError::config(format!("cannot build the message: {e}")))?;
        self.transport.send(&msg).map(|_| ()).map_err(|e| smtp_error(&e))
    }
}

impl Sink for EmailSink {
    fn send(&mut self, events: &[SecurityEvent]) -> Result<(), SinkError> {
        for e in events {
            match e.kevlar.get("deliver_to").and_then(serde_json::Value::as_str) {
                Some(to) => self.deliver(&[mailbox(to)?], &render::user_subject(e), render::user_body(e))?,
                None => self.deliver(&self.to, &render::subject(e), render::body(e))?,
            }
        }
        Ok(())
    }

    fn health(&mut self) -> Result<(), SinkError> {
        match self.transport.test_connection() {
            Ok(true) => Ok(()),
            Ok(false) => Err(SinkError::rejected("the SMTP server did not answer NOOP")),
            Err(e) => Err(smtp_error(&e)),
        }
    }
}

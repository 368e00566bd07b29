//! The syslog sink: RFC 5424 over UDP, TCP (octet-counting or newline framing) or TLS — what
//! rsyslog, syslog-ng, Papertrail and most log services accept.

pub mod encoder;
#[cfg(test)]
mod tests;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use kevlar_config::{SyslogSink as Config, Transport};
use kevlar_core::SecurityEvent;

use crate::util::net::{resolve, tls_config, Stream};
use crate::{Sink, SinkError};
use encoder::Header;

const TIMEOUT: Duration = Duration::from_secs(10);
/// RFC 5426 §3.2: senders should keep datagrams to what every receiver takes.
const MAX_DATAGRAM: usize = 2048;

enum Output {
    Udp { socket: Option<UdpSocket>, address: String },
    Stream(Stream),
}

pub struct SyslogSink {
    cfg: Config,
    hostname: String,
    procid: u32,
    out: Output,
}

/// The machine's host name, as syslog wants it.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

impl SyslogSink {
    pub fn new(cfg: &Config) -> Result<Self, SinkError> {
        let out = match cfg.transport {
            Transport::Udp => Output::Udp { socket: None, address: cfg.address.clone() },
            Transport::Tcp => Output::Stream(Stream::new(&cfg.address, None, TIMEOUT)),
            Transport::Tls => {
                Output::Stream(Stream::new(&cfg.address, Some(tls_config(cfg.ca_file.as_deref())?), TIMEOUT))
            }
        };
        Ok(SyslogSink {
            hostname: cfg.hostname.clone().unwrap_or_else(hostname),
            procid: std::process::id(),
            cfg: cfg.clone(),
            out,
        })
    }

    fn header(&self) -> Header<'_> {
        Header {
            facility: self.cfg.facility,
            hostname: &self.hostname,
            app_name: &self.cfg.app_name,
            procid: self.procid,
        }
    }
}

fn udp_socket(to: &SocketAddr) -> Result<UdpSocket, SinkError> {
    let bind: SocketAddr = if to.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let s = UdpSocket::bind(bind).map_err(SinkError::io)?;
    s.connect(to).map_err(|e| SinkError::connect(format!("cannot reach {to}: {e}")))?;
    Ok(s)
}

impl Sink for SyslogSink {
    fn send(&mut self, events: &[SecurityEvent]) -> Result<(), SinkError> {
        let header = self.header();
        let msgs: Vec<String> = events.iter().map(|e| encoder::encode(e, &header)).collect();
        let framing = self.cfg.framing;
        match &mut self.out {
            Output::Udp { socket, address } => {
                if socket.is_none() {
                    *socket = Some(udp_socket(&resolve(address)?[0])?);
                }
                if let Some(s) = socket {
                    for m in &msgs {
                        if let Err(e) = s.send(encoder::datagram(m, MAX_DATAGRAM).as_bytes()) {
                            *socket = None;
                            return Err(SinkError::io(e));
                        }
                    }
                }
                Ok(())
            }
            Output::Stream(stream) => {
                let mut buf = Vec::with_capacity(msgs.iter().map(|m| m.len() + 8).sum());
                for m in &msgs {
                    encoder::frame(m, framing, &mut buf);
                }
                stream.send(&buf)
            }
        }
    }

    fn health(&mut self) -> Result<(), SinkError> {
        match &mut self.out {
            Output::Udp { address, .. } => resolve(address).map(|_| ()),
            Output::Stream(s) => s.check(),
        }
    }

    fn batch_size(&self) -> usize {
        500
    }
}

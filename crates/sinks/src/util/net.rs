//! Connections for the stream sinks: TCP with timeouts, optionally TLS (rustls, the public roots
//! plus an optional PEM file of private ones).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::SinkError;

/// The roots: Mozilla's (webpki-roots) and those in `ca_file`.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, SinkError> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| SinkError::config(format!("cannot read {}: {e}", path.display())))?;
        let mut added = 0;
        for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
            let cert: rustls_pki_types::CertificateDer =
                cert.map_err(|e| SinkError::config(format!("{}: not a PEM certificate: {e:?}", path.display())))?;
            roots.add(cert).map_err(|e| SinkError::config(format!("{}: {e}", path.display())))?;
            added += 1;
        }
        if added == 0 {
            return Err(SinkError::config(format!("{}: no certificate found", path.display())));
        }
    }
    Ok(Arc::new(ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()))
}

pub fn resolve(address: &str) -> Result<Vec<SocketAddr>, SinkError> {
    let addrs: Vec<SocketAddr> =
        address.to_socket_addrs().map_err(|e| SinkError::connect(format!("cannot resolve {address}: {e}")))?.collect();
    if addrs.is_empty() {
        return Err(SinkError::connect(format!("{address} resolves to no address")));
    }
    Ok(addrs)
}

pub enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    /// Connects to the first address that answers; with `tls`, completes the handshake now so
    /// that a certificate problem shows as a connection error, not as a lost batch.
    pub fn open(address: &str, tls: Option<&Arc<ClientConfig>>, timeout: Duration) -> Result<Conn, SinkError> {
        let mut last = None;
        for a in resolve(address)? {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    s.set_write_timeout(Some(timeout)).map_err(SinkError::io)?;
                    s.set_read_timeout(Some(timeout)).map_err(SinkError::io)?;
                    let Some(cfg) = tls else { return Ok(Conn::Plain(s)) };
                    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    let name = ServerName::try_from(host.to_owned())
                        .map_err(|_| SinkError::config(format!("`{host}` is not a valid TLS server name")))?;
                    let conn = ClientConnection::new(cfg.clone(), name)
                        .map_err(|e| SinkError::connect(format!("TLS: {e}")))?;
                    let mut stream = StreamOwned::new(conn, s);
                    while stream.conn.is_handshaking() {
                        stream
                            .conn
                            .complete_io(&mut stream.sock)
                            .map_err(|e| SinkError::connect(format!("TLS handshake with {address}: {e}")))?;
                    }
                    return Ok(Conn::Tls(Box::new(stream)));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(SinkError::connect(format!(
            "cannot connect to {address}: {}",
            last.map_or_else(|| "no address".to_owned(), |e| e.to_string())
        )))
    }

    fn sock(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(t) => &t.sock,
        }
    }

    /// Whether the peer has closed its side (or reset): a write would then vanish. Checked before
    /// each batch, since TCP accepts the first write after the peer is gone.
    pub fn peer_closed(&self) -> bool {
        let s = self.sock();
        if s.set_nonblocking(true).is_err() {
            return true;
        }
        let mut b = [0u8; 1];
        let closed = match s.peek(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        };
        let _ = s.set_nonblocking(false);
        closed
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(t) => t.flush(),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(t) => t.read(buf),
        }
    }
}

/// A stream sink's connection, opened on demand and dropped on any error.
pub struct Stream {
    address: String,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
    conn: Option<Conn>,
}

impl Stream {
    pub fn new(address: &str, tls: Option<Arc<ClientConfig>>, timeout: Duration) -> Self {
        Stream { address: address.to_owned(), tls, timeout, conn: None }
    }

    /// Writes `bytes` in full and flushes, reconnecting first if the peer went away.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), SinkError> {
        if self.conn.as_ref().is_some_and(Conn::peer_closed) {
            self.conn = None;
        }
        let conn = match &mut self.conn {
            Some(c) => c,
            None => self.conn.insert(Conn::open(&self.address, self.tls.as_ref(), self.timeout)?),
        };
        let res = conn.write_all(bytes).and_then(|_| conn.flush());
        if let Err(e) = res {
            self.conn = None;
            return Err(SinkError::io(e));
        }
        Ok(())
    }

    /// Connects (and shakes hands) if not connected; the health check.
    pub fn check(&mut self) -> Result<(), SinkError> {
        if self.conn.as_ref().is_some_and(Conn::peer_closed) {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(Conn::open(&self.address, self.tls.as_ref(), self.timeout)?);
        }
        Ok(())
    }
}

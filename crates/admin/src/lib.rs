//! The admin API: `/healthz` (open), `/v1/status` and `/v1/events` behind a bearer token.
//!
//! The token is generated on first start into `<data-dir>/admin.token` (mode 0600) and compared
//! in constant time. Off loopback the API is only served over TLS (the config refuses otherwise).
#![forbid(unsafe_code)]

mod routes;
mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use kevlar_engine::Bus;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use routes::parse_since;
pub use token::{ensure_token, TOKEN_FILE};

/// Extra status supplied by the binary (proxy counters, supervisor state).
pub type StatusFn = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

#[derive(Clone)]
pub struct AdminState {
    pub token: Arc<String>,
    pub data_dir: PathBuf,
    pub bus: Bus,
    pub status: StatusFn,
    pub started: std::time::Instant,
    /// Present under `kevlar run`: reload and restart the app.
    pub app: Option<kevlar_supervisor::SupervisorHandle>,
    /// The black book, bans and route inventory.
    pub shield: Option<kevlar_shield::Shield>,
    /// The alert sinks and their outbox, when any sink is configured.
    pub alerts: Option<kevlar_sinks::Alerts>,
}

/// The admin API's routes (the binary merges the dashboard's beside them).
pub fn router(state: AdminState) -> axum::Router {
    routes::router(state)
}

/// Serves `app` (the admin API and the dashboard) on `listener` until `shutdown` resolves; each
/// request carries its peer's address (`ConnectInfo`).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let http = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let accept = async {
        loop {
            let (stream, peer): (tokio::net::TcpStream, SocketAddr) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "admin: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            };
            let svc = TowerToHyperService::new(app.clone().layer(axum::Extension(axum::extract::ConnectInfo(peer))));
            let http = http.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let res = match tls {
                    None => http.serve_connection(TokioIo::new(stream), svc).await,
                    Some(acc) => {
                        match tokio::time::timeout(std::time::Duration::from_secs(10), acc.accept(stream)).await {
                            Ok(Ok(s)) => http.serve_connection(TokioIo::new(s), svc).await,
                            _ => return,
                        }
                    }
                };
                if let Err(e) = res {
                    tracing::debug!(%peer, error = %e, "admin connection error");
                }
            });
        }
    };
    tokio::select! {
        _ = accept => {}
        _ = shutdown => {}
    }
}

//! An upgraded connection (WebSocket) relayed both ways, its client-to-app messages read when
//! `[detect] websocket` is on, closed when either side closes or both are idle.

/// An upgraded (WebSocket) tunnel closes after this long without a byte either way, at least.
pub(super) const TUNNEL_IDLE_MIN: std::time::Duration = std::time::Duration::from_secs(300);

/// Relays an upgraded connection until either side closes, errs or the tunnel is idle for
/// `idle`; then both sides are closed, so that a client gone away never leaves Kevlar holding
/// the app's socket (and the app never keeps Kevlar's).
pub(super) async fn tunnel<C, U>(
    c: C,
    u: U,
    idle: std::time::Duration,
    mut scan: Option<Box<dyn kevlar_core::MessageScan>>,
) where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    U: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut cr, mut cw) = tokio::io::split(c);
    let (mut ur, mut uw) = tokio::io::split(u);
    let mut cb = vec![0u8; 8192];
    let mut ub = vec![0u8; 8192];
    let mut frames = crate::wsframe::Frames::default();
    loop {
        let step = tokio::time::timeout(idle, async {
            tokio::select! {
                r = cr.read(&mut cb) => match r {
                    Ok(0) | Err(_) => false,
                    Ok(n) => {
                        // Judged before relayed: a refused message's last frame never reaches the app.
                        let refused = scan.as_mut().is_some_and(|s| frames.feed(&cb[..n], s.as_mut()).is_err());
                        if refused {
                            let _ = cw.write_all(crate::wsframe::CLOSE_POLICY).await;
                            false
                        } else {
                            uw.write_all(&cb[..n]).await.is_ok()
                        }
                    }
                },
                r = ur.read(&mut ub) => match r {
                    Ok(0) | Err(_) => false,
                    Ok(n) => cw.write_all(&ub[..n]).await.is_ok(),
                },
            }
        })
        .await;
        if step != Ok(true) {
            break;
        }
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let _ = cw.shutdown().await;
        let _ = uw.shutdown().await;
    })
    .await;
}

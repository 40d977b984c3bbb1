//! `--metrics ADDR`: serves [`Metrics`] as Prometheus text at `/metrics`, for `fetch` and
//! `worker`.
//!
//! A scrape is one small GET every few seconds, so a few lines of HTTP/1.1 on a tokio listener
//! do (one request per connection, then close); pulling a server framework into the command for
//! it would not pay. A request head over 8 KiB, or one that takes over 5 s to arrive, is dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use outofsync::metrics::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The largest request head read.
const HEAD_MAX: usize = 8192;

/// Binds `addr` now (so a bad address is an error before the run) and serves `metrics` on the
/// current runtime until it ends. Returns the address bound (port 0 picks one).
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> anyhow::Result<SocketAddr> {
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("--metrics {addr}: cannot listen"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let answered = tokio::time::timeout(Duration::from_secs(5), async {
                    let mut head = Vec::with_capacity(512);
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = tcp.read(&mut buf).await?;
                        if n == 0 || head.len() + n > HEAD_MAX {
                            return Ok(());
                        }
                        head.extend_from_slice(&buf[..n]);
                    }
                    let path = head.split(|&b| b == b' ').nth(1).unwrap_or_default();
                    let (status, body) = if path == b"/metrics" || path.starts_with(b"/metrics?") {
                        ("200 OK", metrics.render())
                    } else {
                        ("404 Not Found", "metrics are at /metrics\n".to_owned())
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    tcp.write_all(reply.as_bytes()).await?;
                    tcp.shutdown().await
                })
                .await;
                if let Ok(Err(e)) = answered {
                    tracing::debug!("a metrics scrape failed: {e}");
                }
            });
        }
    });
    Ok(bound)
}

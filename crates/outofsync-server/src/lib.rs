//! The built-in JSON API (`outofsync serve`): the target of the demo, the tests, the lab and the benchmarks.
//!
//! HTTP/1.1 and HTTP/2 (h2c, prior knowledge) on one port, served by hyper on tokio. Endpoints are
//! grouped by family, one file each; the `router` dispatches and ties each request into `/stats`.
//!
//! [`Server`] runs the API in-process on its own thread and runtime (so a blocking test, a child
//! process or the client under test cannot starve it) and stops when dropped; [`run`] serves on the
//! caller's runtime until a shutdown future completes, which is what `outofsync serve` does.
//!
//! # Examples
//!
//! ```
//! let server = outofsync_server::Server::start().unwrap();
//! let url = server.url("/json?id=7");
//! assert!(url.starts_with("http://127.0.0.1:"));
//! // The server stops when `server` is dropped.
//! ```

#![deny(missing_docs, missing_debug_implementations)]

mod body;
mod echo;
mod encoding;
mod json;
mod oauth;
mod random;
mod redirect;
mod reply;
mod router;
mod stats;
mod status;
mod timing;

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use encoding::{Coding, compress};
pub use oauth::{CLIENT_ID as OAUTH_CLIENT_ID, CLIENT_SECRET as OAUTH_CLIENT_SECRET};
use router::State;

/// How the built-in server is set up.
#[derive(Clone, Debug)]
#[must_use]
pub struct ServerConfig {
    /// The address to listen on. Default: `127.0.0.1`.
    pub bind: IpAddr,
    /// The port; `0` picks a free one. Default: `0`.
    pub port: u16,
    /// Seeds `/flaky?p=` and `/bytes/{n}`. Default: [`DEFAULT_SEED`].
    pub seed: u64,
    /// Worker threads of the server's runtime; `1` is a current-thread runtime. Default: `1`.
    pub threads: usize,
}

/// The seed used when none is given, so that runs repeat.
pub const DEFAULT_SEED: u64 = 0x006f_7574_7379_6e63;

impl Default for ServerConfig {
    fn default() -> Self {
        Self { bind: IpAddr::V4(Ipv4Addr::LOCALHOST), port: 0, seed: DEFAULT_SEED, threads: 1 }
    }
}

impl ServerConfig {
    /// Sets the seed of `/flaky?p=` and `/bytes/{n}`.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the number of worker threads.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Binds and starts the server on a thread of its own.
    ///
    /// # Errors
    /// The address cannot be bound, or the runtime cannot be built.
    pub fn start(self) -> io::Result<Server> {
        Server::start_with(self)
    }
}

/// The line `outofsync serve` prints first on stdout, for whoever started it to learn its
/// address: `listening on http://ADDR`.
pub fn announcement(addr: SocketAddr) -> String {
    format!("listening on http://{addr}")
}

/// The base URL (`http://ADDR`) in an [`announcement`] line.
pub fn announced_url(line: &str) -> Option<&str> {
    line.trim().strip_prefix("listening on ")
}

/// A running built-in server on its own thread; dropping it stops the server and frees the port.
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Server {
    /// Starts a server on `127.0.0.1` and a free port, with the default seed.
    ///
    /// # Errors
    /// As [`ServerConfig::start`].
    pub fn start() -> io::Result<Server> {
        Self::start_with(ServerConfig::default())
    }

    /// Starts a server as configured.
    ///
    /// # Errors
    /// The address cannot be bound, or the runtime cannot be built.
    pub fn start_with(config: ServerConfig) -> io::Result<Server> {
        let std_listener = std::net::TcpListener::bind((config.bind, config.port))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let runtime = if config.threads <= 1 {
            tokio::runtime::Builder::new_current_thread().enable_all().build()?
        } else {
            tokio::runtime::Builder::new_multi_thread().worker_threads(config.threads).enable_all().build()?
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name(format!("outofsync-server-{}", addr.port())).spawn(
            move || {
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(std_listener).expect("inside a runtime");
                    // Dropping the handle is an immediate stop: no grace, in-flight requests are cut.
                    run(listener, config.seed, async { _ = stopped.await }, Duration::ZERO).await;
                });
                // Dropping the runtime here cancels the connections still open.
            },
        )?;
        Ok(Server { addr, stop: Some(stop), thread: Some(thread) })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of `path` (which starts with `/`) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            _ = thread.join();
        }
    }
}

/// Serves the API on `listener` until `shutdown` completes, then stops accepting and gives the
/// requests in flight up to `grace` to finish.
pub async fn run(listener: TcpListener, seed: u64, shutdown: impl Future<Output = ()>, grace: Duration) {
    let state = Arc::new(State::new(seed));
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or a reset during the handshake: wait a moment instead of
                    // spinning, and keep serving the connections already open.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        _ = stream.set_nodelay(true);
        let state = state.clone();
        let service = service_fn(move |req| router::handle(state.clone(), req));
        let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection ended with an error: {e}");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => tracing::info!("grace period over; closing the connections left"),
    }
}

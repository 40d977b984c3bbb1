//! Keep-alive connections for plain `http://` over HTTP/1, on hyper's connection API.
//!
//! hyper-util's pooled client (which still carries `https` and HTTP/2) pays per request for what
//! a fetcher does not need: it hashes the pool key (scheme and authority) with SipHash about 36
//! times, races the checkout against a lazily built connect future, and spawns a task per response
//! that waits for the connection to be ready and then puts it back. `bench/profile.sh` counted
//! about 7,000 of 60,000 instructions per small request there. Here a request takes the newest
//! idle connection of its origin, or opens one; its exchange puts it back itself once the body has
//! been read to the end ([`Pool::put`]). A connection whose body was not read to the end is
//! dropped, which closes it.
//!
//! The idle connections are bounded in number (the oldest of some origin goes when a new one
//! would pass the bound) and in age (one idle longer than the idle timeout is closed when next
//! seen, and all such are swept out every half timeout when a connection is put back); a
//! connection the server closed is noticed by hyper's connection task and skipped.

use foldhash::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use super::connector::{ConnectError, Connector};

/// The sending half of one HTTP/1 connection; its other half runs as a task of its own.
pub(crate) type Sender = http1::SendRequest<Full<Bytes>>;

/// Why a connection could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    Connect(ConnectError),
    Http(hyper::Error),
}

/// Idle HTTP/1 connections by origin, and the means to open more.
pub(crate) struct Pool {
    connector: Connector,
    builder: http1::Builder,
    idle: Mutex<Idle>,
    max_idle: usize,
    idle_timeout: Duration,
}

/// Idle connections by origin (`host:port` as the URL writes it), oldest first.
///
/// An origin whose connections are all taken keeps its (empty) list: at full concurrency that is
/// most of the time, and dropping the list on every take and making it anew on every put was two
/// allocations a request. Empty lists are dropped when they pass the number of connections kept
/// idle, and by every sweep.
#[derive(Default)]
struct Idle {
    by_origin: HashMap<Box<str>, Vec<(Sender, Instant)>>,
    count: usize,
    /// When connections idle for longer than the timeout were last closed.
    swept: Option<Instant>,
}

impl Pool {
    /// A pool that keeps at most `max_idle` idle connections, each for at most `idle_timeout`;
    /// a response head may take up to `max_head` bytes.
    pub fn new(connector: Connector, max_idle: usize, idle_timeout: Duration, max_head: usize) -> Self {
        let mut builder = http1::Builder::new();
        builder.max_buf_size(max_head);
        Self { connector, builder, idle: Mutex::default(), max_idle, idle_timeout }
    }

    /// The newest idle connection to `origin` that is neither closed nor too old, if any.
    pub fn take(&self, origin: &str) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let Idle { by_origin, count, .. } = &mut *idle;
        let conns = by_origin.get_mut(origin)?;
        let now = Instant::now();
        let mut found = None;
        while let Some((sender, since)) = conns.pop() {
            *count -= 1;
            if now.saturating_duration_since(since) >= self.idle_timeout {
                // Oldest first: all the others have waited longer still.
                *count -= conns.len();
                conns.clear();
                break;
            }
            if !sender.is_closed() {
                found = Some(sender);
                break;
            }
        }
        found
    }

    /// Keeps `sender`, whose last response has been read to its end, for the next request to
    /// `origin`.
    pub fn put(&self, origin: &str, sender: Sender) {
        if sender.is_closed() || self.max_idle == 0 {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // Closed after the lock is let go (closing a connection wakes its task): every half
        // timeout, those idle for too long, so that an origin not asked for again does not keep
        // its connections open until the run ends.
        let swept = *idle.swept.get_or_insert(now);
        let expired = (now.saturating_duration_since(swept) >= self.idle_timeout / 2)
            .then(|| idle.sweep(now, self.idle_timeout));
        let evicted = (idle.count >= self.max_idle).then(|| idle.evict()).flatten();
        let Idle { by_origin, count, .. } = &mut *idle;
        match by_origin.get_mut(origin) {
            Some(conns) => conns.push((sender, now)),
            None => {
                // Origins with no idle connection are at most as many as those kept idle.
                if by_origin.len() >= 2 * self.max_idle {
                    by_origin.retain(|_, conns| !conns.is_empty());
                }
                by_origin.insert(origin.into(), vec![(sender, now)]);
            }
        }
        *count += 1;
        drop(idle);
        drop((expired, evicted));
    }

    /// Opens a new connection to `host` (as the URL writes it) and `port`, outside the pool.
    pub async fn connect(&self, host: &str, port: u16) -> Result<Sender, OpenError> {
        let stream = self.connector.open(host, port, false).await.map_err(OpenError::Connect)?;
        let (sender, connection) =
            self.builder.handshake(TokioIo::new(stream)).await.map_err(OpenError::Http)?;
        // The connection's errors reach the request in flight through its response future.
        tokio::spawn(async move { _ = connection.await });
        Ok(sender)
    }

    /// How many connections are idle.
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).count
    }
}

impl Idle {
    /// Takes out every connection closed or idle for `timeout` or longer.
    fn sweep(&mut self, now: Instant, timeout: Duration) -> Vec<Sender> {
        self.swept = Some(now);
        let mut out = Vec::new();
        self.by_origin.retain(|_, conns| {
            // Oldest first: the expired ones are a prefix.
            let fresh = conns.iter().position(|(_, since)| now.saturating_duration_since(*since) < timeout);
            out.extend(conns.drain(..fresh.unwrap_or(conns.len())).map(|(sender, _)| sender));
            conns.retain(|(sender, _)| !sender.is_closed());
            !conns.is_empty()
        });
        let kept: usize = self.by_origin.values().map(Vec::len).sum();
        self.count = kept;
        out
    }

    /// Takes out the oldest connection of some origin (whichever the map yields first).
    fn evict(&mut self) -> Option<Sender> {
        let conns = self.by_origin.values_mut().find(|conns| !conns.is_empty())?;
        let (sender, _) = conns.remove(0);
        self.count -= 1;
        Some(sender)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::Request;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A server on 127.0.0.1 that answers every request on a connection with `{}`, and hangs up
    /// after answering `/last`.
    async fn server() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        let Ok(n) = tcp.read(&mut buf).await else { return };
                        if n == 0 {
                            return;
                        }
                        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
                        if tcp.write_all(reply).await.is_err() || buf[..n].starts_with(b"GET /last") {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    fn pool(max_idle: usize, idle_timeout: Duration) -> Arc<Pool> {
        let tls =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
        let connector = Connector::new(&[], Duration::from_secs(5), tls);
        Arc::new(Pool::new(connector, max_idle, idle_timeout, 64 * 1024))
    }

    /// Sends `GET path` on `sender` and reads the body to its end.
    async fn get(sender: &mut Sender, port: u16, path: &str) -> hyper::Result<()> {
        use http_body_util::BodyExt;
        sender.ready().await?;
        let request = Request::get(path)
            .header("host", format!("127.0.0.1:{port}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = sender.send_request(request).await?;
        response.into_body().collect().await?;
        Ok(())
    }

    fn origin(port: u16) -> String {
        format!("127.0.0.1:{port}")
    }

    /// A new connection to `port` that has carried one request, read to its end.
    async fn used(pool: &Pool, port: u16) -> Sender {
        let mut sender = pool.connect("127.0.0.1", port).await.unwrap();
        get(&mut sender, port, "/").await.unwrap();
        sender
    }

    #[tokio::test]
    async fn a_connection_put_back_is_taken_again_by_its_origin_only() {
        let (a, b) = (server().await, server().await);
        let pool = pool(8, Duration::from_secs(90));
        let sender = used(&pool, a).await;
        pool.put(&origin(a), sender);
        assert_eq!(pool.idle_count(), 1);
        assert!(pool.take(&origin(b)).is_none(), "another origin's connection is not lent");
        let mut again = pool.take(&origin(a)).expect("the idle connection");
        assert_eq!(pool.idle_count(), 0);
        get(&mut again, a, "/").await.expect("a second request on the same connection");
        assert!(pool.take(&origin(a)).is_none());
    }

    #[tokio::test]
    async fn idle_connections_are_bounded_in_number_and_in_age() {
        let ports = [server().await, server().await, server().await];
        let pool = pool(2, Duration::from_secs(90));
        for &port in &ports {
            let sender = used(&pool, port).await;
            pool.put(&origin(port), sender);
            assert!(pool.idle_count() <= 2);
        }
        assert_eq!(pool.idle_count(), 2);
        let kept = ports.iter().filter(|&&p| pool.take(&origin(p)).is_some()).count();
        assert_eq!(kept, 2, "one of the three was closed to make room");

        // An origin not asked for again: its connection is closed all the same, at the next put.
        let pool = self::pool(8, Duration::from_millis(100));
        let old = used(&pool, ports[0]).await;
        pool.put(&origin(ports[0]), old);
        tokio::time::sleep(Duration::from_millis(150)).await;
        let new = used(&pool, ports[1]).await;
        pool.put(&origin(ports[1]), new);
        assert_eq!(pool.idle_count(), 1, "the connection idle for too long is closed");
        assert!(pool.take(&origin(ports[1])).is_some());

        let pool = self::pool(8, Duration::ZERO);
        let sender = used(&pool, ports[0]).await;
        pool.put(&origin(ports[0]), sender);
        assert!(pool.take(&origin(ports[0])).is_none(), "older than the idle timeout");
        assert_eq!(pool.idle_count(), 0);
    }

    /// An origin whose connections are all taken keeps an empty list, but such lists stay fewer
    /// than twice the connections kept idle, however many origins come and go, and eviction
    /// passes over them.
    #[tokio::test]
    async fn origins_without_idle_connections_are_bounded_and_passed_over() {
        let port = server().await;
        let pool = pool(2, Duration::from_secs(90));
        let mut sender = used(&pool, port).await;
        // One live connection, put back and taken again under 100 origins' names.
        for n in 0..100 {
            let name = format!("host{n}.test:80");
            pool.put(&name, sender);
            sender = pool.take(&name).expect("just put back");
            assert!(pool.idle.lock().unwrap().by_origin.len() <= 2 * 2 + 1, "at origin {n}");
        }
        assert_eq!(pool.idle_count(), 0);
        // Two kept, and a third to make room for: the oldest of some origin goes, not a panic
        // on an empty list.
        let second = used(&pool, port).await;
        let third = used(&pool, port).await;
        pool.put(&origin(port), sender);
        pool.put(&origin(port), second);
        pool.put(&origin(port), third);
        assert_eq!(pool.idle_count(), 2);
        assert!(pool.take(&origin(port)).is_some() && pool.take(&origin(port)).is_some());
        assert!(pool.take(&origin(port)).is_none());
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_neither_kept_nor_lent() {
        let port = server().await;
        let pool = pool(8, Duration::from_secs(90));
        let open = used(&pool, port).await;
        let mut closed = pool.connect("127.0.0.1", port).await.unwrap();
        get(&mut closed, port, "/last").await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !closed.is_closed() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(closed.is_closed(), "the server hung up");
        {
            // As if it had closed while idle: newest, so looked at first.
            let mut idle = pool.idle.lock().unwrap();
            let now = Instant::now();
            idle.by_origin.insert(origin(port).into(), vec![(open, now), (closed, now)]);
            idle.count = 2;
        }
        let mut taken = pool.take(&origin(port)).expect("the open one, past the closed one");
        assert_eq!(pool.idle_count(), 0);
        get(&mut taken, port, "/").await.expect("the open connection works");

        let mut closed = pool.connect("127.0.0.1", port).await.unwrap();
        get(&mut closed, port, "/last").await.unwrap();
        while !closed.is_closed() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        pool.put(&origin(port), closed);
        assert_eq!(pool.idle_count(), 0, "a closed connection is not kept");
    }
}

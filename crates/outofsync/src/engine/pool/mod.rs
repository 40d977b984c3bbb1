//! Keep-alive connections by origin, over HTTP/1.1 and HTTP/2, on hyper's connection API.
//!
//! Why our own pool rather than hyper-util's client:
//! - **Cost.** hyper-util's pooled client hashes its key with SipHash about 36 times a request,
//!   races each checkout against a connect future and spawns a task per response to put the
//!   connection back: a tenth of a small request's instructions (BENCHMARKS.md).
//!   Here a request takes the newest idle connection of its origin, or opens one, and puts it
//!   back itself once the body has been read to the end ([`Pool::put`]).
//! - **HTTP/2 that stays healthy.** Its client sends every request of an origin over one
//!   connection, even one that has gone silent. Here streams go to a connection with room under
//!   the server's `SETTINGS_MAX_CONCURRENT_STREAMS`, more connections are opened as needed, and a
//!   connection whose stream timed out carries no new one (the `h2` module).
//! - **Every send counted.** Its client may send a request again on its own; here nothing is
//!   sent that the exchange does not see (and the record count).
//!
//! A connection that might turn out to be HTTP/2 (`https` with ALPN, or prior knowledge) is
//! opened by one request of its origin at a time; the others wait for it rather than open a
//! connection each that HTTP/2 would not need. Once an origin is known to speak HTTP/1.1, its
//! requests open connections in parallel, as HTTP/1.1 needs one each.
//!
//! Idle HTTP/1 connections are bounded in number (the oldest of some origin goes when a new one
//! would pass the bound) and in age (one idle longer than the idle timeout is closed when next
//! seen, and all such are swept out every half timeout); an HTTP/2 connection is dropped once it
//! is closed, retired and empty, or idle for the timeout.

pub(crate) mod h2;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use foldhash::HashMap;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::watch;

use super::config::HttpVersion;
use super::connector::Connector;
use super::failure::{Failure, connect_failure, hyper_failure};
use super::proxy::Route;

/// The sending half of one HTTP/1 connection; its other half runs as a task of its own.
pub(crate) type Sender = http1::SendRequest<Full<Bytes>>;

/// A connection to send one request on.
pub(crate) enum Conn {
    /// An HTTP/1.1 connection, this request's alone until it is put back.
    H1(Sender),
    /// A stream on a shared HTTP/2 connection.
    H2(h2::Lease),
}

impl Conn {
    /// The protocol it speaks.
    pub fn version(&self) -> http::Version {
        match self {
            Conn::H1(_) => http::Version::HTTP_11,
            Conn::H2(_) => http::Version::HTTP_2,
        }
    }

    pub fn is_h2(&self) -> bool {
        matches!(self, Conn::H2(_))
    }
}

/// A connection for one request, and whether it has carried requests before.
pub(crate) struct Checkout {
    pub conn: Conn,
    pub reused: bool,
}

/// How an exchange ended for its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The response was read to its end and the connection may carry another.
    Reusable,
    /// The connection must not carry another request (it says it closes, the body was not read
    /// to its end, or the exchange failed); an HTTP/2 connection decides that for itself.
    Spent,
    /// The exchange timed out: an HTTP/1 connection is closed, an HTTP/2 one retired.
    TimedOut,
}

/// Where a request goes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target<'a> {
    /// The origin as a key: scheme, host and port as the URL writes them.
    pub key: &'a str,
    /// The host as the URL writes it (an IPv6 address in brackets).
    pub host: &'a str,
    pub port: u16,
    pub https: bool,
    /// The proxy in the way, if any.
    pub proxy: Option<&'a Route>,
}

/// Connections by origin, and the means to open more.
pub(crate) struct Pool {
    connector: Connector,
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
    http: HttpVersion,
    state: Mutex<State>,
    max_idle: usize,
    idle_timeout: Duration,
}

/// The origins and the count of idle HTTP/1 connections over all of them.
#[derive(Default)]
struct State {
    origins: HashMap<Box<str>, Origin>,
    idle: usize,
    /// When connections idle for longer than the timeout were last closed.
    swept: Option<Instant>,
}

/// The connections of one origin.
///
/// An origin whose connections are all taken keeps its (empty) entry: at full concurrency that
/// is most of the time, and dropping it on every take and making it anew on every put was two
/// allocations a request. Empty entries are dropped when they pass twice the number of
/// connections kept idle, and by every sweep.
#[derive(Default)]
struct Origin {
    /// Idle HTTP/1 connections, oldest first.
    idle: Vec<(Sender, Instant)>,
    /// HTTP/2 connections, in or out of use.
    shared: Vec<Arc<h2::Conn>>,
    /// Whether its last new connection spoke HTTP/2, when ALPN let it choose.
    speaks_h2: Option<bool>,
    /// A connection being opened that may turn out HTTP/2: other requests wait for it. What it
    /// sends is the failure to open it, if it failed.
    opening: Option<watch::Receiver<Option<Failure>>>,
}

impl Origin {
    fn is_empty(&self) -> bool {
        self.idle.is_empty() && self.shared.is_empty() && self.opening.is_none()
    }
}

/// What a new connection turned out to be.
enum Opened {
    H1(Sender),
    H2(Arc<h2::Conn>),
}

/// What a checkout does when nothing can be reused.
enum Next {
    /// Open a connection; with a sender, as the one opening for the origin (others wait).
    Open(Option<watch::Sender<Option<Failure>>>),
    /// Wait for the connection another request is opening.
    Wait(watch::Receiver<Option<Failure>>),
}

/// Settings of a [`Pool`].
pub(crate) struct PoolConfig {
    pub http: HttpVersion,
    /// Idle HTTP/1 connections kept, over all origins.
    pub max_idle: usize,
    pub idle_timeout: Duration,
    /// The largest response head (HTTP/1) or header list (HTTP/2).
    pub max_head: usize,
    /// How often an HTTP/2 connection with streams open is PINGed when nothing else arrives,
    /// and how long its answer may take before the connection is closed.
    pub ping: Duration,
}

impl Pool {
    pub fn new(connector: Connector, config: PoolConfig) -> Self {
        let mut h1 = http1::Builder::new();
        h1.max_buf_size(config.max_head);
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(config.max_head).unwrap_or(u32::MAX))
            .keep_alive_interval(config.ping)
            .keep_alive_timeout(config.ping);
        Self {
            connector,
            h1,
            h2,
            http: config.http,
            state: Mutex::default(),
            max_idle: config.max_idle,
            idle_timeout: config.idle_timeout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection for a request to `target`: a stream on an HTTP/2 connection with room, the
    /// newest idle HTTP/1 connection, or a new connection.
    ///
    /// # Errors
    /// The connection could not be opened (by this request, or by the one it waited for).
    pub async fn checkout(&self, target: &Target<'_>) -> Result<Checkout, Failure> {
        loop {
            let next = {
                let mut state = self.lock();
                let now = Instant::now();
                let State { origins, idle, .. } = &mut *state;
                let origin = match origins.get_mut(target.key) {
                    Some(origin) => origin,
                    None => origins.entry(target.key.into()).or_default(),
                };
                if let Some(conn) = origin.reuse(now, self.idle_timeout, idle) {
                    return Ok(Checkout { conn, reused: true });
                }
                let may_be_h2 = match self.http {
                    HttpVersion::Http1Only => false,
                    HttpVersion::Http2PriorKnowledge => true,
                    HttpVersion::Auto => target.https && origin.speaks_h2 != Some(false),
                };
                match &origin.opening {
                    _ if !may_be_h2 => Next::Open(None),
                    Some(opening) => Next::Wait(opening.clone()),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        origin.opening = Some(rx);
                        Next::Open(Some(tx))
                    }
                }
            };
            match next {
                Next::Wait(mut opening) => {
                    // Woken when the connection is open (the sender is dropped) or failed.
                    if opening.changed().await.is_ok()
                        && let Some(failure) = opening.borrow().clone()
                    {
                        return Err(failure);
                    }
                }
                Next::Open(None) => {
                    let opened = self.open_boxed(target).await?;
                    return Ok(Checkout { conn: self.keep(target, opened), reused: false });
                }
                Next::Open(Some(tx)) => {
                    let opening = Opening { pool: self, key: target.key, tx };
                    return match self.open_boxed(target).await {
                        // Shared before the waiters are let go, so that they find it.
                        Ok(opened) => Ok(Checkout { conn: self.keep(target, opened), reused: false }),
                        Err(failure) => {
                            opening.fail(failure.clone());
                            Err(failure)
                        }
                    };
                }
            }
        }
    }

    /// A new connection for a request to `target`, never one that has carried a request: for
    /// the one resend after a stale connection, which the pool may hold more of.
    pub async fn fresh(&self, target: &Target<'_>) -> Result<Checkout, Failure> {
        let opened = self.open_boxed(target).await?;
        Ok(Checkout { conn: self.keep(target, opened), reused: false })
    }

    /// [`Pool::open`] on the heap: the connect and the handshake (TLS, a proxy's tunnel) are the
    /// largest state a request goes through, and most requests find a connection ready. Inline,
    /// that state would be part of every request's future for as long as the request runs,
    /// waiting for its response included; boxed, it is held only while a connection is opened.
    async fn open_boxed(&self, target: &Target<'_>) -> Result<Opened, Failure> {
        Box::pin(self.open(target)).await
    }

    /// Opens a connection to `target` and runs its handshake.
    async fn open(&self, target: &Target<'_>) -> Result<Opened, Failure> {
        let stream = self
            .connector
            .open(
                target.host,
                target.port,
                target.https,
                target.proxy,
                self.http == HttpVersion::Http2PriorKnowledge,
            )
            .await
            .map_err(|e| connect_failure(&e))?;
        let h2 = match self.http {
            HttpVersion::Http2PriorKnowledge => true,
            HttpVersion::Http1Only => false,
            HttpVersion::Auto => stream.is_h2(),
        };
        if h2 {
            let conn = h2::Conn::handshake(&self.h2, stream)
                .await
                .map_err(|e| hyper_failure(&e, "the HTTP/2 handshake"))?;
            return Ok(Opened::H2(conn));
        }
        let (sender, connection) =
            self.h1.handshake(TokioIo::new(stream)).await.map_err(|e| hyper_failure(&e, "the handshake"))?;
        // The connection's errors reach the request in flight through its response future.
        tokio::spawn(async move { _ = connection.await });
        Ok(Opened::H1(sender))
    }

    /// Notes what `opened` speaks for its origin, shares it if it is HTTP/2, and gives this
    /// request its connection.
    fn keep(&self, target: &Target<'_>, opened: Opened) -> Conn {
        let mut state = self.lock();
        let origin = state.origins.entry(target.key.into()).or_default();
        match opened {
            Opened::H1(sender) => {
                if target.https && self.http == HttpVersion::Auto {
                    origin.speaks_h2 = Some(false);
                }
                Conn::H1(sender)
            }
            Opened::H2(conn) => {
                origin.speaks_h2 = Some(true);
                let lease = conn.stream();
                origin.shared.push(conn);
                Conn::H2(lease)
            }
        }
    }

    /// Gives back the connection of an exchange with `target` that ended as `ending`.
    pub fn release(&self, key: &str, conn: Conn, ending: Ending) {
        match (conn, ending) {
            (Conn::H1(sender), Ending::Reusable) => self.put(key, sender),
            (Conn::H1(_), _) => {} // dropped: closed
            (Conn::H2(lease), Ending::Reusable | Ending::Spent) => lease.finish(),
            (Conn::H2(lease), Ending::TimedOut) => drop(lease), // retires its connection
        }
    }

    /// Keeps `sender`, whose last response has been read to its end, for the next request to
    /// `origin`.
    pub fn put(&self, origin: &str, sender: Sender) {
        if sender.is_closed() || self.max_idle == 0 {
            return;
        }
        let now = Instant::now();
        let mut state = self.lock();
        // Closed after the lock is let go (closing a connection wakes its task): every half
        // timeout, those idle for too long, so that an origin not asked for again does not keep
        // its connections open until the run ends.
        let swept = *state.swept.get_or_insert(now);
        let expired = (now.saturating_duration_since(swept) >= self.idle_timeout / 2)
            .then(|| state.sweep(now, self.idle_timeout));
        let evicted = (state.idle >= self.max_idle).then(|| state.evict()).flatten();
        let State { origins, idle, .. } = &mut *state;
        match origins.get_mut(origin) {
            Some(entry) => entry.idle.push((sender, now)),
            None => {
                // Origins with nothing in them are at most as many as the connections kept idle.
                if origins.len() >= 2 * self.max_idle {
                    origins.retain(|_, o| !o.is_empty());
                }
                origins.entry(origin.into()).or_default().idle.push((sender, now));
            }
        }
        *idle += 1;
        drop(state);
        drop((expired, evicted));
    }

    /// How many HTTP/1 connections are idle.
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.lock().idle
    }

    /// The HTTP/2 connections of `origin`.
    #[cfg(test)]
    fn shared(&self, origin: &str) -> Vec<Arc<h2::Conn>> {
        self.lock().origins.get(origin).map(|o| o.shared.clone()).unwrap_or_default()
    }
}

/// The one request opening a connection for its origin; dropped — done, failed or cancelled —
/// it lets the requests waiting for it go on.
struct Opening<'a> {
    pool: &'a Pool,
    key: &'a str,
    tx: watch::Sender<Option<Failure>>,
}

impl Opening<'_> {
    /// The connection could not be opened: the waiters take the same failure rather than each
    /// try again in turn, which against a host that does not answer would cost one connect
    /// timeout per request.
    fn fail(self, failure: Failure) {
        self.tx.send_replace(Some(failure));
    }
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        let mut state = self.pool.lock();
        if let Some(origin) = state.origins.get_mut(self.key)
            && origin.opening.as_ref().is_some_and(|rx| rx.same_channel(&self.tx.subscribe()))
        {
            origin.opening = None;
        }
        // The sender goes after the lock: its waiters wake to an origin with nobody opening.
    }
}

impl Origin {
    /// A connection that can carry one more request now, if any: a stream on an HTTP/2
    /// connection with room first, then the newest idle HTTP/1 connection that is neither closed
    /// nor too old. Spent HTTP/2 connections and expired idle ones are let go on the way.
    fn reuse(&mut self, now: Instant, timeout: Duration, idle: &mut usize) -> Option<Conn> {
        if !self.shared.is_empty() {
            self.shared.retain(|conn| !conn.is_spent(now, timeout));
            if let Some(conn) = self.shared.iter().find(|conn| conn.has_room()) {
                return Some(Conn::H2(conn.stream()));
            }
        }
        while let Some((sender, since)) = self.idle.pop() {
            *idle -= 1;
            if now.saturating_duration_since(since) >= timeout {
                // Oldest first: all the others have waited longer still.
                *idle -= self.idle.len();
                self.idle.clear();
                return None;
            }
            if !sender.is_closed() {
                return Some(Conn::H1(sender));
            }
        }
        None
    }
}

impl State {
    /// Takes out every idle HTTP/1 connection closed or idle for `timeout` or longer, and lets
    /// go of spent HTTP/2 connections.
    fn sweep(&mut self, now: Instant, timeout: Duration) -> Vec<Sender> {
        self.swept = Some(now);
        let mut out = Vec::new();
        self.origins.retain(|_, origin| {
            // Oldest first: the expired ones are a prefix.
            let conns = &mut origin.idle;
            let fresh = conns.iter().position(|(_, since)| now.saturating_duration_since(*since) < timeout);
            out.extend(conns.drain(..fresh.unwrap_or(conns.len())).map(|(sender, _)| sender));
            conns.retain(|(sender, _)| !sender.is_closed());
            origin.shared.retain(|conn| !conn.is_spent(now, timeout));
            !origin.is_empty()
        });
        self.idle = self.origins.values().map(|o| o.idle.len()).sum();
        out
    }

    /// Takes out the oldest idle HTTP/1 connection of some origin (whichever the map yields
    /// first).
    fn evict(&mut self) -> Option<Sender> {
        let conns = self.origins.values_mut().map(|o| &mut o.idle).find(|conns| !conns.is_empty())?;
        let (sender, _) = conns.remove(0);
        self.idle -= 1;
        Some(sender)
    }
}

#[cfg(test)]
mod tests;

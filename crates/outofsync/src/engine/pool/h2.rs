//! Shared HTTP/2 connections: many streams at once on each, never more than the server allows,
//! and a connection that stops answering is retired instead of taking every request with it.
//!
//! A connection is *retired* when a stream on it times out (or is dropped before its response
//! was read): the server or the path may have gone silent, and a silent connection would swallow
//! every request sent on it until each times out in turn. A retired connection carries no new
//! stream; the streams already on it end on their own (or by their timeouts), and once none is
//! left it is dropped, which closes it. hyper's keep-alive PINGs close a connection whose peer
//! stops answering even while no stream times out.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::super::connector::Stream;

/// The sending half of one HTTP/2 connection, cloned for each stream.
pub(crate) type Sender = http2::SendRequest<Full<Bytes>>;

/// The other half: hyper's task for the connection.
type Connection = http2::Connection<TokioIo<Stream>, Full<Bytes>, TokioExecutor>;

/// One HTTP/2 connection, shared by the streams on it.
pub(crate) struct Conn {
    sender: Sender,
    /// Streams open on it now (counted from checkout to the end of the body).
    streams: AtomicUsize,
    /// hyper's connection task, polled by a task of ours; shared because it alone knows the
    /// server's `SETTINGS_MAX_CONCURRENT_STREAMS`, which may come (or change) at any time.
    connection: Arc<Mutex<Option<Connection>>>,
    /// No new stream goes on it.
    retired: AtomicBool,
    /// When its last stream ended (or it was opened).
    idle_since: Mutex<Instant>,
}

impl Conn {
    /// Runs the HTTP/2 handshake on `stream` and starts the connection's task.
    pub async fn handshake(
        builder: &http2::Builder<TokioExecutor>,
        stream: Stream,
    ) -> hyper::Result<Arc<Conn>> {
        let (sender, connection) = builder.handshake(TokioIo::new(stream)).await?;
        let connection = Arc::new(Mutex::new(Some(connection)));
        let polled = connection.clone();
        // The connection's errors reach the streams in flight through their response futures.
        tokio::spawn(poll_fn(move |cx| {
            let mut slot = polled.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(connection) = slot.as_mut() else { return Poll::Ready(()) };
            match Pin::new(connection).poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(_) => {
                    *slot = None;
                    Poll::Ready(())
                }
            }
        }));
        Ok(Arc::new(Conn {
            sender,
            streams: AtomicUsize::new(0),
            connection,
            retired: AtomicBool::new(false),
            idle_since: Mutex::new(Instant::now()),
        }))
    }

    /// The streams the server allows at once on this connection.
    fn max_streams(&self) -> usize {
        let connection = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        connection.as_ref().map_or(0, Connection::current_max_send_streams)
    }

    /// Whether one more stream may go on it now. Called under the pool's lock, like every
    /// [`Conn::stream`], so two checkouts cannot both take its last free stream.
    pub fn has_room(&self) -> bool {
        !self.retired.load(Ordering::Relaxed)
            && !self.sender.is_closed()
            && self.streams.load(Ordering::Relaxed) < self.max_streams()
    }

    /// Whether it has no further use: closed, retired with nothing left on it, or idle for
    /// `timeout`.
    pub fn is_spent(&self, now: Instant, timeout: Duration) -> bool {
        if self.sender.is_closed() {
            return true;
        }
        if self.streams.load(Ordering::Relaxed) > 0 {
            return false;
        }
        self.retired.load(Ordering::Relaxed)
            || now.saturating_duration_since(*self.idle_since.lock().unwrap_or_else(PoisonError::into_inner))
                >= timeout
    }

    /// A new stream on this connection.
    pub fn stream(self: &Arc<Self>) -> Lease {
        self.streams.fetch_add(1, Ordering::Relaxed);
        Lease { conn: self.clone(), finished: false }
    }

    /// Streams open on it now.
    #[cfg(test)]
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }

    /// Whether it is retired.
    #[cfg(test)]
    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Relaxed)
    }
}

/// The right to one stream on a shared connection, from checkout to the end of its body.
///
/// Dropped without [`Lease::finish`] — its attempt timed out or was cancelled mid-way — it
/// retires its connection (see the module documentation).
pub(crate) struct Lease {
    conn: Arc<Conn>,
    finished: bool,
}

impl Lease {
    /// A sender for this stream's request.
    pub fn sender(&self) -> Sender {
        self.conn.sender.clone()
    }

    /// The stream ended as the protocol meant it to (a response, or an error the connection
    /// reported): the connection stays in use.
    pub fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.finished {
            self.conn.retired.store(true, Ordering::Relaxed);
        }
        *self.conn.idle_since.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.conn.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

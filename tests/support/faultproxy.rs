//! A fault-injecting TCP proxy on 127.0.0.1 and a free port, in front of one upstream address:
//! each accepted connection passes through, is reset or stalled after so many bytes, swallowed,
//! refused or closed late, as the test chooses by the connection's number.
//!
//! It forwards bytes and understands nothing, so TLS and HTTP/2 go through it as well as HTTP/1.1.
//! It counts connections and the bytes forwarded each way, per connection. Like the other test
//! servers it runs on a runtime of its own (see [`super::serve_loopback`]) and stops, closing
//! every connection it holds, stalled ones included, when dropped.

use std::future::pending;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::sync::CancellationToken;

/// What the proxy does to one connection. "Down" is upstream to client, "up" client to upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Passes everything through, closes as the ends close.
    None,
    /// Passes `down_bytes` down, then resets the client's connection (SO_LINGER 0 and close: an
    /// RST, not a FIN) and closes the upstream one.
    ResetAfter {
        /// Bytes forwarded down before the reset.
        down_bytes: u64,
    },
    /// Passes `down_bytes` down, then forwards nothing more either way, but keeps both connections
    /// open until the proxy is dropped: a peer that went silent without closing.
    StallAfter {
        /// Bytes forwarded down before the stall.
        down_bytes: u64,
    },
    /// Accepts and reads, never connects upstream, never answers, keeps the connection open.
    Blackhole,
    /// Closes the connection as soon as it is accepted.
    Refuse,
    /// Passes everything through, but passes on each end's close only `delay` after it happened.
    SlowClose {
        /// How late each close is passed on.
        delay: Duration,
    },
}

/// What one connection saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The fault it was given.
    pub fault: Fault,
    /// Bytes forwarded from the client to the upstream.
    pub up: u64,
    /// Bytes forwarded from the upstream to the client.
    pub down: u64,
}

#[derive(Debug)]
struct Counters {
    fault: Fault,
    up: AtomicU64,
    down: AtomicU64,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    connections: Arc<Mutex<Vec<Arc<Counters>>>>,
    _runtime: tokio::runtime::Runtime,
}

impl FaultProxy {
    /// A proxy to `upstream` that gives the `n`th connection it accepts (from 0) the fault
    /// `choose(n)`.
    pub fn start(
        upstream: SocketAddr,
        choose: impl Fn(usize) -> Fault + Send + Sync + 'static,
    ) -> FaultProxy {
        let connections: Arc<Mutex<Vec<Arc<Counters>>>> = Arc::default();
        let accepted = AtomicUsize::new(0);
        let registry = connections.clone();
        // Numbered in the accept loop (serve_loopback calls this closure there, in accept order),
        // not in the connection's task, so "connection 0" is the first one accepted.
        let (addr, runtime) = super::serve_loopback(move |client| {
            let n = accepted.fetch_add(1, Ordering::SeqCst);
            let counters =
                Arc::new(Counters { fault: choose(n), up: AtomicU64::new(0), down: AtomicU64::new(0) });
            registry.lock().unwrap().push(counters.clone());
            relay(client, upstream, counters)
        });
        FaultProxy { addr, connections, _runtime: runtime }
    }

    /// A proxy to `upstream` that gives connection `n` (from 0) the fault `fault`, and every other
    /// connection none.
    pub fn only(upstream: SocketAddr, n: usize, fault: Fault) -> FaultProxy {
        Self::start(upstream, move |i| if i == n { fault } else { Fault::None })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many connections it has accepted.
    pub fn connections(&self) -> usize {
        self.connections.lock().unwrap().len()
    }

    /// What connection `n` (from 0) has seen so far, if it was accepted.
    pub fn connection(&self, n: usize) -> Option<Connection> {
        let connections = self.connections.lock().unwrap();
        connections.get(n).map(|c| Connection {
            fault: c.fault,
            up: c.up.load(Ordering::SeqCst),
            down: c.down.load(Ordering::SeqCst),
        })
    }

    /// Bytes forwarded from clients to the upstream, over all connections.
    pub fn bytes_up(&self) -> u64 {
        self.connections.lock().unwrap().iter().map(|c| c.up.load(Ordering::SeqCst)).sum()
    }

    /// Bytes forwarded from the upstream to clients, over all connections.
    pub fn bytes_down(&self) -> u64 {
        self.connections.lock().unwrap().iter().map(|c| c.down.load(Ordering::SeqCst)).sum()
    }
}

/// How one direction's copy ended.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// The source closed its side.
    Eof,
    /// A read or write failed.
    Failed,
    /// The byte limit was reached.
    Limit,
    /// The other direction asked this one to stop.
    Stopped,
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, counters: Arc<Counters>) {
    let fault = counters.fault;
    match fault {
        Fault::Refuse => return,
        Fault::Blackhole => {
            let mut sink = vec![0; 16 << 10];
            while let Ok(1..) = client.read(&mut sink).await {}
            // The client may have closed its side only: holding the socket keeps ours open.
            return pending().await;
        }
        _ => {}
    }
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let (limit, delay) = match fault {
        Fault::ResetAfter { down_bytes } | Fault::StallAfter { down_bytes } => {
            (Some(down_bytes), Duration::ZERO)
        }
        Fault::SlowClose { delay } => (None, delay),
        _ => (None, Duration::ZERO),
    };
    // Cancelled when one direction's ending must end the other too (a failure, a fault).
    let stop = CancellationToken::new();
    let up = tokio::spawn(copy(
        client_read,
        server_write,
        counters.clone(),
        Direction::Up,
        None,
        delay,
        stop.clone(),
    ));
    let (ending, server_read, client_write) =
        copy(server_read, client_write, counters.clone(), Direction::Down, limit, delay, stop.clone()).await;
    match (ending, fault) {
        (Ending::Limit, Fault::ResetAfter { .. }) => {
            stop.cancel();
            // Zero linger turns the close into an RST. `forget`, not drop: dropping a write half
            // sends a FIN first, which the client would read as a clean end. The socket closes
            // when the read half (back from the other task) goes too.
            _ = client_write.as_ref().set_zero_linger();
            client_write.forget();
            drop(server_read);
            _ = up.await;
        }
        (Ending::Limit, Fault::StallAfter { .. }) => {
            stop.cancel();
            let halves = up.await;
            // Everything stays open, and silent, until the runtime is dropped with the proxy.
            let _held = (halves, server_read, client_write);
            pending::<()>().await;
        }
        (Ending::Eof, _) => {
            // The server closed its side and that close was passed on; the client may still send.
            _ = up.await;
        }
        _ => {
            stop.cancel();
            _ = up.await;
        }
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Up,
    Down,
}

/// Copies `from` to `to` until `from` ends, something fails, `stop` is cancelled or `limit` bytes
/// have been forwarded; passes an end of stream on (`delay` later). Returns the halves, so that
/// the caller decides how they close.
async fn copy(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    counters: Arc<Counters>,
    direction: Direction,
    limit: Option<u64>,
    delay: Duration,
    stop: CancellationToken,
) -> (Ending, OwnedReadHalf, OwnedWriteHalf) {
    let count = match direction {
        Direction::Up => &counters.up,
        Direction::Down => &counters.down,
    };
    let mut buf = vec![0; 64 << 10];
    let mut sent = 0u64;
    let ending = loop {
        if limit == Some(sent) {
            break Ending::Limit;
        }
        let n = tokio::select! {
            () = stop.cancelled() => break Ending::Stopped,
            read = from.read(&mut buf) => match read {
                Ok(0) => break Ending::Eof,
                Ok(n) => n,
                Err(_) => break Ending::Failed,
            },
        };
        let allowed = limit.map_or(n, |limit| n.min(usize::try_from(limit - sent).unwrap_or(usize::MAX)));
        tokio::select! {
            () = stop.cancelled() => break Ending::Stopped,
            written = to.write_all(&buf[..allowed]) => if written.is_err() { break Ending::Failed },
        }
        sent += allowed as u64;
        count.fetch_add(allowed as u64, Ordering::SeqCst);
    };
    if ending == Ending::Eof {
        tokio::time::sleep(delay).await;
        _ = to.shutdown().await;
    } else if ending == Ending::Failed {
        stop.cancel();
    }
    (ending, from, to)
}

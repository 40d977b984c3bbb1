//! The pool against small servers on 127.0.0.1: HTTP/1 connections kept, lent and let go;
//! HTTP/2 streams shared under the server's limit, retired connections, one connection opened
//! for many waiting requests, and one failure shared by them.

use std::sync::atomic::{AtomicUsize, Ordering};

use http::Request;
use http_body_util::BodyExt;
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

/// An HTTP/2 (h2c) server on 127.0.0.1 allowing `max_streams` streams per connection, whose
/// answers take `delay`; counts the connections it accepted.
async fn h2_server(max_streams: u32, delay: Duration) -> (u16, Arc<AtomicUsize>) {
    use hyper::server::conn::http2 as server;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_request| async move {
                    tokio::time::sleep(delay).await;
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(
                        b"{}",
                    ))))
                });
                _ = server::Builder::new(TokioExecutor::new())
                    .max_concurrent_streams(max_streams)
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (port, accepted)
}

/// The count once the server has had time to accept what the kernel already has (a connection
/// is made before the server's task takes it).
async fn settled(count: &AtomicUsize) -> usize {
    tokio::time::sleep(Duration::from_millis(100)).await;
    count.load(Ordering::SeqCst)
}

fn pool_with(http: HttpVersion, max_idle: usize, idle_timeout: Duration, connect: Duration) -> Arc<Pool> {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let connector = Connector::new(&[], connect, tls);
    let config =
        PoolConfig { http, max_idle, idle_timeout, max_head: 64 * 1024, ping: Duration::from_secs(10) };
    Arc::new(Pool::new(connector, config))
}

fn pool(max_idle: usize, idle_timeout: Duration) -> Arc<Pool> {
    pool_with(HttpVersion::Auto, max_idle, idle_timeout, Duration::from_secs(5))
}

fn origin(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn target(key: &str, port: u16, https: bool) -> Target<'_> {
    Target { key, host: "127.0.0.1", port, https, proxy: None }
}

/// The newest idle HTTP/1 connection of `origin`, as a checkout would find it.
fn take(pool: &Pool, origin: &str) -> Option<Sender> {
    let mut state = pool.lock();
    let State { origins, idle, .. } = &mut *state;
    match origins.get_mut(origin)?.reuse(Instant::now(), pool.idle_timeout, idle)? {
        Conn::H1(sender) => Some(sender),
        Conn::H2(_) => panic!("an HTTP/1 server"),
    }
}

/// Sends `GET path` on `sender` and reads the body to its end.
async fn get(sender: &mut Sender, port: u16, path: &str) -> hyper::Result<()> {
    sender.ready().await?;
    let request =
        Request::get(path).header("host", format!("127.0.0.1:{port}")).body(Full::new(Bytes::new())).unwrap();
    let response = sender.send_request(request).await?;
    response.into_body().collect().await?;
    Ok(())
}

/// A new connection to `port` that has carried one request, read to its end.
async fn used(pool: &Pool, port: u16) -> Sender {
    let key = origin(port);
    let Conn::H1(mut sender) = pool.fresh(&target(&key, port, false)).await.unwrap().conn else {
        panic!("an HTTP/1 connection")
    };
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
    assert!(take(&pool, &origin(b)).is_none(), "another origin's connection is not lent");
    let mut again = take(&pool, &origin(a)).expect("the idle connection");
    assert_eq!(pool.idle_count(), 0);
    get(&mut again, a, "/").await.expect("a second request on the same connection");
    assert!(take(&pool, &origin(a)).is_none());
    pool.put(&origin(a), again);
    let key = origin(a);
    let checkout = pool.checkout(&target(&key, a, false)).await.unwrap();
    assert!(checkout.reused && matches!(checkout.conn, Conn::H1(_)), "a checkout takes the idle one");
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
    let kept = ports.iter().filter(|&&p| take(&pool, &origin(p)).is_some()).count();
    assert_eq!(kept, 2, "one of the three was closed to make room");

    // An origin not asked for again: its connection is closed all the same, at the next put.
    let pool = self::pool(8, Duration::from_millis(100));
    let old = used(&pool, ports[0]).await;
    pool.put(&origin(ports[0]), old);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let new = used(&pool, ports[1]).await;
    pool.put(&origin(ports[1]), new);
    assert_eq!(pool.idle_count(), 1, "the connection idle for too long is closed");
    assert!(take(&pool, &origin(ports[1])).is_some());

    let pool = self::pool(8, Duration::ZERO);
    let sender = used(&pool, ports[0]).await;
    pool.put(&origin(ports[0]), sender);
    assert!(take(&pool, &origin(ports[0])).is_none(), "older than the idle timeout");
    assert_eq!(pool.idle_count(), 0);
}

/// An origin whose connections are all taken keeps an empty entry, but such entries stay fewer
/// than twice the connections kept idle, however many origins come and go, and eviction
/// passes over them.
#[tokio::test]
async fn origins_without_idle_connections_are_bounded_and_passed_over() {
    let port = server().await;
    let pool = pool(2, Duration::from_secs(90));
    let mut sender = used(&pool, port).await;
    // One live connection, put back and taken again under 100 origins' names.
    for n in 0..100 {
        let name = format!("http://host{n}.test:80");
        pool.put(&name, sender);
        sender = take(&pool, &name).expect("just put back");
        assert!(pool.lock().origins.len() <= 2 * 2 + 1, "at origin {n}");
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
    assert!(take(&pool, &origin(port)).is_some() && take(&pool, &origin(port)).is_some());
    assert!(take(&pool, &origin(port)).is_none());
}

#[tokio::test]
async fn a_connection_the_server_closed_is_neither_kept_nor_lent() {
    let port = server().await;
    let pool = pool(8, Duration::from_secs(90));
    let open = used(&pool, port).await;
    let mut closed = used(&pool, port).await;
    get(&mut closed, port, "/last").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !closed.is_closed() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(closed.is_closed(), "the server hung up");
    {
        // As if it had closed while idle: newest, so looked at first.
        let mut state = pool.lock();
        let now = Instant::now();
        state.origins.entry(origin(port).into()).or_default().idle = vec![(open, now), (closed, now)];
        state.idle = 2;
    }
    let mut taken = take(&pool, &origin(port)).expect("the open one, past the closed one");
    assert_eq!(pool.idle_count(), 0);
    get(&mut taken, port, "/").await.expect("the open connection works");

    let mut closed = used(&pool, port).await;
    get(&mut closed, port, "/last").await.unwrap();
    while !closed.is_closed() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pool.put(&origin(port), closed);
    assert_eq!(pool.idle_count(), 0, "a closed connection is not kept");
}

/// Streams share an HTTP/2 connection up to the server's `SETTINGS_MAX_CONCURRENT_STREAMS`;
/// past it a second connection opens; many requests at once to a new origin open one
/// connection, not one each.
#[tokio::test]
async fn http2_streams_share_connections_within_the_servers_limit() {
    let (port, accepted) = h2_server(3, Duration::from_millis(50)).await;
    let pool =
        pool_with(HttpVersion::Http2PriorKnowledge, 8, Duration::from_secs(90), Duration::from_secs(5));
    let key = origin(port);
    // The first connection learns the server's limit from its SETTINGS; a request on it makes
    // sure they have arrived.
    let first = pool.checkout(&target(&key, port, false)).await.unwrap();
    let Conn::H2(lease) = first.conn else { panic!("HTTP/2 with prior knowledge") };
    let response =
        lease.sender().send_request(Request::get(format!("{key}/")).body(Full::default()).unwrap());
    response.await.unwrap().into_body().collect().await.unwrap();
    lease.finish();
    assert_eq!(accepted.load(Ordering::SeqCst), 1);

    let to = target(&key, port, false);
    let leases: Vec<_> = futures_util::future::join_all((0..5).map(|_| pool.checkout(&to)))
        .await
        .into_iter()
        .map(|c| c.unwrap())
        .collect();
    let conns = pool.shared(&key);
    assert_eq!(conns.len(), 2, "3 streams on the first connection, 2 on a second");
    assert_eq!(conns.iter().map(|c| c.streams()).collect::<Vec<_>>(), [3, 2]);
    assert_eq!(settled(&accepted).await, 2);
    drop(leases.into_iter().map(|c| c.conn).collect::<Vec<_>>());

    // A new origin (the same server under another name), twenty requests at once: one
    // connection is opened, the others wait for it and share it.
    let (port, accepted) = h2_server(100, Duration::ZERO).await;
    let key = origin(port);
    let to = target(&key, port, false);
    let all = futures_util::future::join_all((0..20).map(|_| pool.checkout(&to))).await;
    assert!(all.iter().all(Result::is_ok));
    assert_eq!(settled(&accepted).await, 1, "one connection for twenty waiting requests");
    assert_eq!(all.iter().filter(|c| !c.as_ref().unwrap().reused).count(), 1);
}

/// A stream whose exchange timed out retires its connection: no new stream goes on it, the
/// next request opens another, and the retired one is let go once its last stream ends.
#[tokio::test]
async fn a_timed_out_stream_retires_its_http2_connection() {
    let (port, accepted) = h2_server(100, Duration::ZERO).await;
    let pool =
        pool_with(HttpVersion::Http2PriorKnowledge, 8, Duration::from_secs(90), Duration::from_secs(5));
    let key = origin(port);
    let a = pool.checkout(&target(&key, port, false)).await.unwrap();
    let b = pool.checkout(&target(&key, port, false)).await.unwrap();
    assert!(b.reused, "the second stream shares the first connection");
    let old = pool.shared(&key)[0].clone();
    pool.release(&key, a.conn, Ending::TimedOut);
    assert!(old.is_retired());
    let c = pool.checkout(&target(&key, port, false)).await.unwrap();
    assert!(!c.reused, "a new connection, not the retired one");
    assert_eq!(settled(&accepted).await, 2);
    pool.release(&key, b.conn, Ending::Reusable);
    pool.release(&key, c.conn, Ending::Reusable);
    let d = pool.checkout(&target(&key, port, false)).await.unwrap();
    assert!(d.reused);
    let conns = pool.shared(&key);
    assert_eq!(conns.len(), 1, "the retired connection, empty now, is let go");
    assert!(!Arc::ptr_eq(&conns[0], &old));
}

/// Requests waiting for a connection another request is opening share its failure: against a
/// host that accepts TCP but never answers TLS, ten requests cost one connect timeout and one
/// connection, not ten of each in turn.
#[tokio::test]
async fn requests_waiting_for_a_connection_share_its_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(tcp); // silent: the TLS handshake never ends
        }
    });
    let pool = pool_with(HttpVersion::Auto, 8, Duration::from_secs(90), Duration::from_millis(300));
    let key = format!("https://127.0.0.1:{port}");
    let start = Instant::now();
    let to = target(&key, port, true);
    let all = futures_util::future::join_all((0..10).map(|_| pool.checkout(&to))).await;
    assert!(start.elapsed() < Duration::from_secs(2), "one connect timeout, not ten: {:?}", start.elapsed());
    for result in &all {
        let failure = result.as_ref().err().expect("the connect failed");
        assert_eq!(failure.kind, crate::record::ErrorKind::Timeout, "{}", failure.message);
    }
    assert_eq!(settled(&accepted).await, 1);
    assert!(pool.lock().origins[key.as_str()].opening.is_none(), "nobody is opening any more");
}

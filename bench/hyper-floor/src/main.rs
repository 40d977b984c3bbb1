//! `hyper-floor URL N C`: N GETs of one plain-HTTP URL, C in flight, each on a connection of its
//! own, with nothing but hyper's HTTP/1 client connection, tokio and the body collected; prints
//! how many were answered 200.
//!
//! `bench/peers.sh` runs it beside outofsync with all requests in flight: what it holds per
//! request is the least any client built on hyper's HTTP/1 connection holds (the connection
//! task, its read and write buffers, its dispatch channel, the socket's registration), with none
//! of a record's work. Like outofsync by default, it runs on one event-loop thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, n, c] = args.as_slice() else {
        return Err("usage: hyper-floor URL N C (a plain http:// URL, N requests, C in flight)".into());
    };
    let uri: hyper::Uri = url.parse()?;
    let (n, c): (usize, usize) = (n.parse()?, c.parse()?);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let ok = runtime.block_on(run(uri, n, c))?;
    println!("{ok}");
    Ok(())
}

async fn run(uri: hyper::Uri, n: usize, c: usize) -> Result<usize, Error> {
    let host = uri.authority().ok_or("the URL has no host")?.clone();
    let addr = format!("{}:{}", host.host(), host.port_u16().unwrap_or(80));
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let slots = Arc::new(Semaphore::new(c));
    let ok = Arc::new(AtomicUsize::new(0));
    for _ in 0..n {
        let permit = slots.clone().acquire_owned().await?;
        let (addr, path, host, ok) = (addr.clone(), path.clone(), host.clone(), ok.clone());
        tokio::spawn(async move {
            if let Ok(200) = get(&addr, &path, host.as_str()).await {
                ok.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
    }
    // Every slot back: every request has ended.
    let _all = slots.acquire_many(u32::try_from(c)?).await?;
    Ok(ok.load(Ordering::Relaxed))
}

/// One GET on a connection of its own; the status, after the whole body is read.
async fn get(addr: &str, path: &str, host: &str) -> Result<u16, Error> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move { _ = connection.await });
    let request = Request::get(path).header(hyper::header::HOST, host).body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}

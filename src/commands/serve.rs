//! `outofsync serve`: binds, prints the address, serves until SIGINT or SIGTERM.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};

use crate::cli::ServeArgs;

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    super::raise_open_files_limit();
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?
    };
    runtime.block_on(async {
        let listener = listen(args.bind, args.port)
            .with_context(|| format!("cannot listen on {}:{}", args.bind, args.port))?;
        let addr = listener.local_addr()?;
        // Scripts read this line to learn the port, so it goes out (and is flushed) before serving.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", outofsync_server::announcement(addr))?;
        stdout.flush()?;
        drop(stdout);
        outofsync_server::run(listener, args.seed, shutdown_signal(), args.grace).await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Connections that may wait to be accepted. tokio's `bind` asks for 128; a burst of thousands of
/// connections at once (the lab's 10,000 in flight) would overflow that, and every connection
/// dropped costs its client a one-second SYN retry. The kernel caps it at `net.core.somaxconn`.
const BACKLOG: u32 = 8192;

/// Binds like `TcpListener::bind` (with `SO_REUSEADDR`), with a deeper accept queue.
fn listen(ip: IpAddr, port: u16) -> std::io::Result<TcpListener> {
    let socket = if ip.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::new(ip, port))?;
    socket.listen(BACKLOG)
}

/// Completes on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

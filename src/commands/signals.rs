//! SIGINT and SIGTERM for the client commands: the first stops the run gracefully through a
//! [`Shutdown`], the second quits at once.
//!
//! Quitting at once is safe because the output never holds a partial claim: the writer appends
//! whole lines only, so the worst a second signal leaves is a torn last line, which `--resume`
//! cuts. The process then exits with 128 + the signal's number, as shells expect.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use anyhow::Context;
use outofsync::engine::Shutdown;

const SIGINT: u8 = 2;
const SIGTERM: u8 = 15;

/// Which signal stopped the run, if one did.
pub struct Signals {
    received: Arc<AtomicU8>,
}

impl Signals {
    /// Starts watching; must be called within the runtime.
    ///
    /// The watcher task lives until the runtime ends: a signal after the run's end still
    /// counts, and a second one still quits.
    pub fn watch(shutdown: Shutdown, grace: Duration, quiet: bool) -> anyhow::Result<Signals> {
        let received = Arc::new(AtomicU8::new(0));
        let mut next = listen().context("cannot install the signal handlers")?;
        let seen = received.clone();
        tokio::spawn(async move {
            let Some(first) = next.recv().await else { return };
            seen.store(first, Ordering::SeqCst);
            if !quiet {
                eprintln!(
                    "\noutofsync: {}: reading no more input; requests in flight get {} to finish, then \
                     are cancelled (signal again to quit now; --resume fetches what has no record)",
                    name(first),
                    humantime::format_duration(grace)
                );
            }
            shutdown.begin(grace);
            if let Some(second) = next.recv().await {
                std::process::exit(128 + i32::from(second));
            }
        });
        Ok(Signals { received })
    }

    /// The exit code of a run stopped by a signal: 128 + its number.
    pub fn exit_code(&self) -> Option<ExitCode> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(ExitCode::from(128 + signal)),
        }
    }
}

fn name(signal: u8) -> &'static str {
    if signal == SIGTERM { "SIGTERM" } else { "SIGINT" }
}

/// A channel of signal numbers, one per SIGINT or SIGTERM received.
fn listen() -> std::io::Result<tokio::sync::mpsc::UnboundedReceiver<u8>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        for (kind, number) in [(SignalKind::interrupt(), SIGINT), (SignalKind::terminate(), SIGTERM)] {
            let mut stream = signal(kind)?;
            let tx = tx.clone();
            tokio::spawn(async move {
                while stream.recv().await.is_some() {
                    if tx.send(number).is_err() {
                        break;
                    }
                }
            });
        }
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(SIGINT).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

//! Where records go: JSON lines appended to a file or stdout by one writer thread.
//!
//! The fetch side serialises records into batches in memory and hands whole batches over a
//! bounded channel; the writer thread does the blocking writes, so a slow disk or a slow reader
//! of stdout applies backpressure all the way to the input instead of blocking a runtime worker.
//! Every batch holds whole lines only, so an interrupted run leaves at most one torn line at the
//! end of the file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use crate::record::Record;

/// Bytes collected before a batch is handed to the writer.
const BATCH: usize = 64 * 1024;
/// Batches in flight between the fetch side and the writer.
const BATCHES_AHEAD: usize = 16;

/// Where the records are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Standard output.
    Stdout,
    /// A file, appended to (created if missing).
    File(PathBuf),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Stdout => f.write_str("stdout"),
            Destination::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Why writing stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The reader of stdout went away (`| head`): not a failure of the run.
    #[error("the output pipe was closed")]
    BrokenPipe,
    /// Writing (or syncing) failed.
    #[error("cannot write to {destination}: {source}")]
    Io {
        /// Where.
        destination: String,
        /// Why.
        source: io::Error,
    },
}

/// The fetch side's handle on the writer.
pub struct Sink {
    batch: Vec<u8>,
    tx: Option<mpsc::Sender<Vec<u8>>>,
    thread: Option<JoinHandle<Result<(), WriteError>>>,
}

impl Sink {
    /// Opens `destination` (appending) and starts the writer thread.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(destination: &Destination) -> Result<Sink, WriteError> {
        let name = destination.to_string();
        let out = match destination {
            Destination::Stdout => Out::Stdout(io::stdout()),
            Destination::File(path) => Out::File(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| WriteError::Io { destination: name.clone(), source })?,
            ),
        };
        let (tx, rx) = mpsc::channel(BATCHES_AHEAD);
        let thread = std::thread::Builder::new()
            .name("outofsync-writer".into())
            .spawn(move || write_batches(out, rx, &name))
            .map_err(|source| WriteError::Io { destination: destination.to_string(), source })?;
        Ok(Sink { batch: Vec::with_capacity(BATCH), tx: Some(tx), thread: Some(thread) })
    }

    /// Adds a record; hands the batch over when it is full.
    ///
    /// # Errors
    /// The writer has stopped (its error comes from [`Sink::finish`]).
    pub async fn push(&mut self, record: &Record) -> Result<(), WriterGone> {
        record.write_json_line(&mut self.batch);
        if self.batch.len() >= BATCH { self.flush().await } else { Ok(()) }
    }

    /// Hands over what is batched (done whenever no record is ready, so lines are not held back).
    ///
    /// # Errors
    /// The writer has stopped.
    pub async fn flush(&mut self) -> Result<(), WriterGone> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        match &self.tx {
            Some(tx) => tx.send(batch).await.map_err(|_| WriterGone),
            None => Err(WriterGone),
        }
    }

    /// Writes what is left, syncs a file to disk and stops the writer.
    ///
    /// # Errors
    /// The first write or sync error, if any happened.
    pub async fn finish(mut self) -> Result<(), WriteError> {
        let flushed = self.flush().await;
        drop(self.tx.take());
        let thread = self.thread.take().expect("finish runs once");
        let result = tokio::task::spawn_blocking(move || thread.join())
            .await
            .expect("joining does not panic")
            .unwrap_or_else(|_| {
                Err(WriteError::Io {
                    destination: "output".into(),
                    source: io::Error::other("writer panicked"),
                })
            });
        result?;
        flushed.map_err(|_| WriteError::Io {
            destination: "output".into(),
            source: io::Error::other("writer stopped"),
        })
    }
}

/// The writer thread stopped early; [`Sink::finish`] tells why.
#[derive(Debug)]
pub struct WriterGone;

enum Out {
    Stdout(io::Stdout),
    File(File),
}

fn write_batches(mut out: Out, mut rx: mpsc::Receiver<Vec<u8>>, name: &str) -> Result<(), WriteError> {
    let fail = |source: io::Error| WriteError::Io { destination: name.to_owned(), source };
    while let Some(batch) = rx.blocking_recv() {
        match &mut out {
            Out::File(file) => file.write_all(&batch).map_err(fail)?,
            Out::Stdout(stdout) => {
                let mut lock = stdout.lock();
                lock.write_all(&batch).and_then(|()| lock.flush()).map_err(|e| {
                    if e.kind() == io::ErrorKind::BrokenPipe { WriteError::BrokenPipe } else { fail(e) }
                })?;
            }
        }
    }
    if let Out::File(file) = &out {
        file.sync_all().map_err(fail)?;
    }
    Ok(())
}

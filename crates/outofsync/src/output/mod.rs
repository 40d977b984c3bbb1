//! Where records go, and how an output survives interruptions.
//!
//! The output is the journal: a record line is the only claim that an input is done. [`Sink`]
//! is its one writer (whole lines, one append per batch, synced as [`Fsync`] says); [`Journal`]
//! opens an output file for a run (the lock, the manifest, a resume's repair); [`scan()`] reads an
//! output back into the set of inputs it records; [`Manifest`] says which input and options wrote
//! it. Together: after any interruption and a resume, one record per input.

pub mod children;
mod journal;
mod manifest;
pub mod scan;
mod sent;
mod sink;
pub mod validators;

use std::io;
use std::path::PathBuf;

pub use journal::{Journal, OpenError, ResumeOptions, Resumed, Start};
pub(crate) use manifest::sync_dir;
pub use manifest::{InputIdentity, Manifest, Mismatch, digest};
pub use scan::{Done, scan};
pub use sent::SentLog;
pub use sink::{Fsync, SYNC_INTERVAL, SYNC_RECORDS, Sink, WriterGone};
pub use validators::ValidatorFile;

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
    /// Writing failed.
    #[error("cannot write to {destination}: {source}")]
    Io {
        /// Where.
        destination: String,
        /// Why.
        source: io::Error,
    },
    /// Syncing to disk failed: what was written since the last sync may not be on the disk.
    #[error(
        "cannot sync {destination} to disk: {source}; records written since the last sync may be lost \
         (check the device, then run again with --resume)"
    )]
    Sync {
        /// Where.
        destination: String,
        /// Why.
        source: io::Error,
    },
}

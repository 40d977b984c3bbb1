//! Opening an output file for a run: the lock, the manifest, and a resume's repair.
//!
//! The output is its own journal: a record line is the only claim that an input is done, so
//! resuming is reading the file back ([`scan`]). Order of steps, each for a reason:
//!
//! 1. Lock the output itself (`flock`, released by the kernel when the process dies, so never
//!    stale): a second run on the same file is refused before it can change anything.
//! 2. Check the manifest before touching the file: a refused resume leaves the output as it was.
//! 3. Repair: cut a torn last line, or (with `--retry-failed`) rewrite the file without its
//!    failed records into a temporary file that is synced and renamed over the output, so a crash
//!    at any moment leaves either the old file or the new one, never a mix.
//! 4. Write the manifest (atomically, by rename) before the first record.
//!
//! Outputs that are not regular files (`/dev/null`, a FIFO) are written as they are: nothing to
//! lock, resume, describe or sync.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::manifest::{Manifest, Mismatch, sync_dir};
use super::scan::{Done, ScanError, scan};

/// What to do with an output that already holds records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Start {
    /// Refuse it: records of an earlier run are never appended to by accident.
    #[default]
    New,
    /// Empty it first.
    Overwrite,
    /// Continue it: fetch only the inputs it does not record.
    Resume(ResumeOptions),
}

/// How a resume treats the output and the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResumeOptions {
    /// Remove the failed records first, so their inputs are fetched again.
    pub retry_failed: bool,
    /// Skip the check that the input is the first run's (needed for stdin).
    pub assume_same_input: bool,
}

/// An output file opened for a run, locked for as long as `file` is open.
#[derive(Debug)]
pub struct Journal {
    /// The file, opened for appending.
    pub file: File,
    /// The inputs it records (empty unless resuming).
    pub done: Done,
    /// What a resume found, if this is one.
    pub resumed: Option<Resumed>,
}

/// What a resume found in the output and did to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resumed {
    /// Records kept: their inputs are skipped.
    pub kept: u64,
    /// Of which failed (kept: only `--retry-failed` fetches them again).
    pub failed_kept: u64,
    /// Failed records removed by `--retry-failed`.
    pub failed_removed: u64,
    /// Bytes of a torn last line that were cut.
    pub torn_bytes: u64,
    /// Paginated walks cut off half-way: they go on from their next page.
    pub walks_partial: u64,
    /// Of the walks cut off half-way, those whose next page is beyond this run's `--max-pages`:
    /// they stay cut (not counted in `walks_partial`). Filled in by the run, which knows the limit.
    pub walks_cut: u64,
}

/// Why an output cannot be used for this run. Nothing in the output was changed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// It holds records and neither `--resume` nor `--overwrite` was given.
    #[error(
        "{} already holds records: pass --resume to fetch only the inputs it lacks, \
         or --overwrite to start over (its records would be lost)",
        path.display()
    )]
    HoldsRecords {
        /// The output.
        path: PathBuf,
    },
    /// It is not empty, and what it holds is not records: another file given as the output by
    /// mistake (an input, say), which neither `--resume` nor appending would make sense of.
    #[error(
        "{} is not empty, and it does not hold records of outofsync: {holds}. Give another -o FILE \
         (or --overwrite to replace all of it)",
        path.display()
    )]
    HoldsOther {
        /// The output.
        path: PathBuf,
        /// What it holds instead, in words (its first line, quoted).
        holds: String,
    },
    /// Another run holds its lock.
    #[error("{} is being written by another outofsync run (it holds the file's lock); wait for it to end", path.display())]
    InUse {
        /// The output.
        path: PathBuf,
    },
    /// It is not a regular file, so it cannot be read back.
    #[error(
        "cannot resume {}: it is not a regular file (a device, a pipe or stdout), so there are no \
         records to read back; --resume needs -o FILE",
        path.display()
    )]
    NotResumable {
        /// The output.
        path: PathBuf,
    },
    /// The manifest refuses the resume.
    #[error(
        "cannot resume {}: {source}. Nothing was changed (--overwrite would start over, losing every \
         record in it)",
        path.display()
    )]
    Mismatch {
        /// The output.
        path: PathBuf,
        /// What differs.
        source: Mismatch,
    },
    /// The output is not what a run of outofsync leaves, even killed.
    #[error("cannot resume {}: {source}. Nothing was changed", path.display())]
    Corrupt {
        /// The output.
        path: PathBuf,
        /// What is wrong.
        source: ScanError,
    },
    /// An I/O error.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl Journal {
    /// Opens `path` for a run that starts as `start`, by the job that `manifest` describes.
    ///
    /// # Errors
    /// See [`OpenError`]: in every case the output is left as it was.
    pub fn open(path: &Path, start: Start, manifest: &Manifest) -> Result<Journal, OpenError> {
        let io = |what: &'static str| move |source| OpenError::Io { what, path: path.to_owned(), source };
        let regular = match std::fs::metadata(path) {
            Ok(meta) => meta.is_file(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(io("inspect")(e)),
        };
        if !regular {
            if let Start::Resume(_) = start {
                return Err(OpenError::NotResumable { path: path.to_owned() });
            }
            let file = OpenOptions::new().append(true).open(path).map_err(io("open"))?;
            return Ok(Journal { file, done: Done::default(), resumed: None });
        }
        let file = OpenOptions::new().read(true).append(true).create(true).open(path).map_err(io("open"))?;
        lock(&file, path)?;
        let len = file.metadata().map_err(io("inspect"))?.len();
        let mut journal = Journal { file, done: Done::default(), resumed: None };
        match start {
            Start::New if len > 0 => {
                return Err(match not_records(&journal.file) {
                    Some(holds) => OpenError::HoldsOther { path: path.to_owned(), holds },
                    None => OpenError::HoldsRecords { path: path.to_owned() },
                });
            }
            Start::Overwrite if len > 0 => journal.file.set_len(0).map_err(io("truncate"))?,
            Start::Resume(options) if len > 0 => {
                let then = Manifest::load(path)
                    .map_err(|source| OpenError::Mismatch { path: path.to_owned(), source })?;
                manifest
                    .check(&then, options.assume_same_input)
                    .map_err(|source| OpenError::Mismatch { path: path.to_owned(), source })?;
                journal = if options.retry_failed { rewrite(path, journal)? } else { repair(path, journal)? };
            }
            _ => {}
        }
        manifest.store(path).map_err(io("write the manifest of"))?;
        Ok(journal)
    }
}

/// What a non-empty output holds, in words, if its first line is not a record (`None` if it is,
/// or if it cannot be read: then the plainer refusal stands).
fn not_records(file: &File) -> Option<String> {
    use std::os::unix::fs::FileExt;
    const SHOWN: usize = 80;
    let mut head = vec![0; 64 * 1024];
    let n = file.read_at(&mut head, 0).ok()?;
    let first = head[..n].split(|&b| b == b'\n').next().unwrap_or_default();
    if serde_json::from_slice::<super::scan::Entry>(first).is_ok() {
        return None;
    }
    Some(match std::str::from_utf8(first) {
        Err(_) => "it starts with binary data, not text".to_owned(),
        Ok(text) if text.trim().is_empty() => "its first line is blank".to_owned(),
        Ok(text) => {
            let mut end = text.len().min(SHOWN);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let more = if end < text.len() { "…" } else { "" };
            format!("its first line is {:?}{more}", &text[..end])
        }
    })
}

fn lock(file: &File, path: &Path) -> Result<(), OpenError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(OpenError::InUse { path: path.to_owned() }),
        Err(TryLockError::Error(source)) => {
            Err(OpenError::Io { what: "lock", path: path.to_owned(), source })
        }
    }
}

fn corrupt(path: &Path) -> impl Fn(ScanError) -> OpenError + '_ {
    move |source| match source {
        ScanError::Io(source) => OpenError::Io { what: "read", path: path.to_owned(), source },
        source => OpenError::Corrupt { path: path.to_owned(), source },
    }
}

/// Reads the records back and cuts a torn last line.
fn repair(path: &Path, mut journal: Journal) -> Result<Journal, OpenError> {
    let scanned = scan(&journal.file, |_, _| Ok(())).map_err(corrupt(path))?;
    if scanned.torn > 0 {
        // The cut is synced before anything is appended after it: otherwise a crash could leave
        // the new records behind the old torn bytes, on one broken line.
        journal
            .file
            .set_len(scanned.whole)
            .and_then(|()| journal.file.sync_all())
            .map_err(|source| OpenError::Io { what: "repair", path: path.to_owned(), source })?;
    }
    journal.resumed = Some(Resumed {
        kept: scanned.done.len(),
        failed_kept: scanned.failed,
        failed_removed: 0,
        torn_bytes: scanned.torn,
        walks_partial: scanned.done.partial_len(),
        walks_cut: 0,
    });
    journal.done = scanned.done;
    Ok(journal)
}

/// Rewrites the output without its failed records (and without a torn last line): copied into a
/// temporary file beside it, which is locked, synced and renamed over the output.
fn rewrite(path: &Path, old: Journal) -> Result<Journal, OpenError> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".retry.tmp");
    let temp = PathBuf::from(temp);
    let temp_path = &temp;
    let io = |what: &'static str| move |source| OpenError::Io { what, path: temp_path.clone(), source };
    let file = OpenOptions::new().read(true).append(true).create(true).open(&temp).map_err(io("create"))?;
    // The lock moves with the file: whoever opens the output after the rename finds it locked.
    lock(&file, &temp)?;
    // A temporary file left by a rewrite that was killed is no one's: the output's lock says so.
    file.set_len(0).map_err(io("truncate"))?;
    let mut kept = Done::default();
    let mut copy = BufWriter::with_capacity(1 << 20, &file);
    let scanned = scan(&old.file, |entry, line| {
        if entry.ok {
            kept.record(entry);
            copy.write_all(line)?;
        } else if let (Some(page), Some(url)) = (entry.page, &entry.url) {
            // A walk that failed on a page goes on from that page; the pages before it stay.
            kept.set_partial(entry.i, page, url.clone());
        }
        Ok(())
    })
    .map_err(corrupt(path))?;
    copy.flush().map_err(io("write"))?;
    drop(copy);
    file.sync_all().map_err(io("sync"))?;
    std::fs::rename(&temp, path).map_err(io("rename"))?;
    sync_dir(path).map_err(io("sync the directory of"))?;
    // Dropping the old handle releases the lock of the old file, which no name points at now.
    drop(old);
    Ok(Journal {
        file,
        resumed: Some(Resumed {
            kept: kept.len(),
            failed_kept: 0,
            failed_removed: scanned.failed,
            torn_bytes: scanned.torn,
            walks_partial: kept.partial_len(),
            walks_cut: 0,
        }),
        done: kept,
    })
}

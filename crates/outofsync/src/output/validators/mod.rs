//! The file of `--validators`: each request's `ETag` and `Last-Modified`, kept between runs on
//! disk, in bounded memory however many requests there are (10^7 and more), and changed only by a
//! run that completes.
//!
//! Two files, and why (a sorted file and a log rather than an embedded database: the lookups of a
//! run are all against the state before it, the changes all land at its end, and both are what a
//! sorted table and an append-only log do with no dependency, in memory that a constant bounds):
//!
//! - `FILE`, the **table**: every kept entry sorted by key, with a sparse index (see
//!   `table.rs`). A run reads it and never writes it; the end of a completed run
//!   writes a new one beside it (`FILE.tmp`), syncs it and renames it over `FILE`, so a crash at
//!   any moment leaves the old table or the new one, whole.
//! - `FILE.log`, the **log**: what this run learnt, appended as each request ends (entries with a
//!   checksum, so a torn last one is found and cut), each written through before its record
//!   reaches the output. A `--resume` keeps it, so the requests of the
//!   interrupted run count too; a new run starts it empty. Its lock (`flock`, released by the
//!   kernel when the process dies) keeps two runs off one store.
//!
//! The commit sorts the log in chunks of at most [`CHUNK_BYTES`] (the newest entry of a key wins),
//! spills each chunk as a sorted run, and merges the runs with the old table into the new one:
//! memory is a chunk and the new index, whatever the sizes.

mod entry;
mod table;

use std::collections::BinaryHeap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

use crate::engine::conditional::{Key, ValidatorStore, Validators};
use table::{Framed, Table, TableWriter};

/// The most bytes of log entries sorted in memory at once by a commit.
pub const CHUNK_BYTES: usize = 32 << 20;

/// The validator store of `--validators FILE`; see the module documentation.
#[derive(Debug)]
pub struct ValidatorFile {
    path: PathBuf,
    /// The table as of the last completed run (replaced by a commit).
    table: RwLock<Option<Table>>,
    log: Mutex<Log>,
    /// A read of the table failed: said once, then the requests go out unconditionally.
    read_failed: AtomicBool,
}

#[derive(Debug)]
struct Log {
    out: BufWriter<File>,
    /// The first write error: the commit reports it instead of committing.
    error: Option<io::Error>,
    buf: Vec<u8>,
}

/// What a commit did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// Requests the store now keeps validators for.
    pub kept: u64,
    /// Entries this run (and the run it resumed) changed.
    pub changed: u64,
}

/// Why a store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another run holds the store.
    #[error("{} is in use by another outofsync run (it holds {}); wait for it to end", path.display(), log.display())]
    InUse {
        /// The store.
        path: PathBuf,
        /// Its log, whose lock is held.
        log: PathBuf,
    },
    /// It cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

impl ValidatorFile {
    /// Opens the store at `path` (nothing there yet is an empty store) and locks it for this
    /// process. The log is left as it is until [`ValidatorFile::begin`].
    ///
    /// # Errors
    /// Another run holds it, or its files cannot be opened or are not a store.
    pub fn open(path: &Path) -> Result<ValidatorFile, StoreError> {
        let log_path = with_suffix(path, ".log");
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        let log =
            OpenOptions::new().read(true).append(true).create(true).open(&log_path).map_err(io(&log_path))?;
        match log.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::InUse { path: path.to_owned(), log: log_path });
            }
            Err(TryLockError::Error(e)) => return Err(io(&log_path)(e)),
        }
        let table = Table::open(path).map_err(io(path))?;
        Ok(ValidatorFile {
            path: path.to_owned(),
            table: RwLock::new(table),
            log: Mutex::new(Log {
                out: BufWriter::with_capacity(64 * 1024, log),
                error: None,
                buf: Vec::new(),
            }),
            read_failed: AtomicBool::new(false),
        })
    }

    /// The store's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Requests the table keeps validators for (as of the last completed run).
    pub fn len(&self) -> u64 {
        self.table.read().expect("the table's lock is never poisoned").as_ref().map_or(0, Table::len)
    }

    /// Whether the table keeps none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a run: a new run empties the log of an interrupted one; a resume keeps it (cutting
    /// a torn last entry) and adds to it. Returns the entries kept.
    ///
    /// # Errors
    /// The log cannot be read, cut or emptied.
    pub fn begin(&self, resume: bool) -> Result<u64, StoreError> {
        let path = with_suffix(&self.path, ".log");
        self.begin_log(resume).map_err(|source| StoreError::Io { path, source })
    }

    fn begin_log(&self, resume: bool) -> io::Result<u64> {
        let mut log = self.log.lock().expect("the log's lock is never poisoned");
        let file = log.out.get_mut();
        if !resume {
            file.set_len(0)?;
            return Ok(0);
        }
        let (whole, count) = scan_log(file, |_| Ok(()))?;
        if whole < file.metadata()?.len() {
            file.set_len(whole)?;
            file.sync_all()?;
        }
        Ok(count)
    }

    /// Makes what this run learnt the store's: merges the log into a new table, renames it over
    /// the old one, and empties the log. Called once a run has completed; at any crash before the
    /// rename the old table stands, after it the new one.
    ///
    /// # Errors
    /// A write during the run failed, or the new table cannot be written.
    pub fn commit(&self) -> Result<Committed, StoreError> {
        self.commit_in_chunks(CHUNK_BYTES)
    }

    fn commit_in_chunks(&self, chunk_bytes: usize) -> Result<Committed, StoreError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        let log_path = with_suffix(&self.path, ".log");
        let mut log = self.log.lock().expect("the log's lock is never poisoned");
        if let Some(e) = log.error.take() {
            return Err(io(&log_path)(e));
        }
        log.out.flush().map_err(io(&log_path))?;
        let runs = sort_log(log.out.get_mut(), &self.path, chunk_bytes).map_err(io(&log_path))?;
        let temp = with_suffix(&self.path, ".tmp");
        let writer = TableWriter::new(File::create(&temp).map_err(io(&temp))?).map_err(io(&temp))?;
        let mut table = self.table.write().expect("the table's lock is never poisoned");
        let committed = merge(table.as_ref(), runs.sources, writer).map_err(io(&temp))?;
        std::fs::rename(&temp, &self.path).map_err(io(&self.path))?;
        super::manifest::sync_dir(&self.path).map_err(io(&self.path))?;
        for spilled in runs.files {
            _ = std::fs::remove_file(spilled);
        }
        *table = Table::open(&self.path).map_err(io(&self.path))?;
        let file = log.out.get_mut();
        file.set_len(0).and_then(|()| file.sync_all()).map_err(io(&log_path))?;
        Ok(committed)
    }
}

impl ValidatorStore for ValidatorFile {
    fn get(&self, key: &Key) -> Option<Validators> {
        match self.table.read().expect("the table's lock is never poisoned").as_ref()?.get(key) {
            Ok(found) => found,
            Err(e) => {
                if !self.read_failed.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "cannot read {}: {e}; requests go out without validators",
                        self.path.display()
                    );
                }
                None
            }
        }
    }

    fn put(&self, key: &Key, validators: &Validators) {
        let mut log = self.log.lock().expect("the log's lock is never poisoned");
        let Log { out, error, buf } = &mut *log;
        if error.is_some() {
            return;
        }
        buf.clear();
        buf.extend_from_slice(&[0; 8]);
        entry::encode(key, validators, buf);
        let len = (buf.len() - 8) as u32;
        let sum = entry::checksum(&buf[8..]);
        buf[..4].copy_from_slice(&len.to_le_bytes());
        buf[4..8].copy_from_slice(&sum.to_le_bytes());
        // Written through at once (a write(2) per change, none for a 304): what a killed run
        // learnt is in the log for its resume, as the records it wrote are in the output.
        if let Err(e) = out.write_all(buf).and_then(|()| out.flush()) {
            *error = Some(e);
        }
    }
}

/// Reads the log from its start, handing each whole entry to `each`: the length of its whole
/// entries and their number. A torn or damaged entry ends it.
fn scan_log(file: &mut File, mut each: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<(u64, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::with_capacity(1 << 20, &*file);
    let (mut whole, mut count, mut head, mut entry) = (0u64, 0u64, [0u8; 8], Vec::new());
    loop {
        if reader.read_exact(&mut head).is_err() {
            break;
        }
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        if !(17..=entry::MAX_ENTRY).contains(&len) {
            break;
        }
        entry.resize(len, 0);
        if reader.read_exact(&mut entry).is_err()
            || entry::checksum(&entry) != u32::from_le_bytes(head[4..].try_into().expect("4 bytes"))
        {
            break;
        }
        each(&entry)?;
        whole += 8 + len as u64;
        count += 1;
    }
    Ok((whole, count))
}

/// The log, sorted: one source per chunk (the last chunk in memory, earlier ones spilled to files).
struct Runs {
    sources: Vec<Source>,
    files: Vec<PathBuf>,
}

/// Sorted entries to merge.
enum Source {
    Table(Framed),
    File(Framed),
    Memory(std::vec::IntoIter<Vec<u8>>),
}

impl Source {
    fn next_into(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        match self {
            Source::Table(framed) | Source::File(framed) => framed.next_into(buf),
            Source::Memory(entries) => Ok(entries.next().map(|entry| *buf = entry).is_some()),
        }
    }
}

/// Sorts the log into runs of at most `chunk_bytes` each, the newest entry of each key kept.
fn sort_log(log: &mut File, store: &Path, chunk_bytes: usize) -> io::Result<Runs> {
    let mut runs = Runs { sources: Vec::new(), files: Vec::new() };
    let mut chunk: Vec<(Key, u64, Vec<u8>)> = Vec::new();
    let (mut bytes, mut seq) = (0usize, 0u64);
    let spill = |chunk: &mut Vec<(Key, u64, Vec<u8>)>, runs: &mut Runs, last: bool| -> io::Result<()> {
        // Newest last within a key, then only the newest kept.
        chunk.sort_unstable_by_key(|a| (a.0, a.1));
        let mut sorted: Vec<Vec<u8>> = Vec::with_capacity(chunk.len());
        let mut keys: Vec<Key> = Vec::with_capacity(chunk.len());
        for (key, _, entry) in chunk.drain(..) {
            if keys.last() == Some(&key) {
                *sorted.last_mut().expect("a key has an entry") = entry;
            } else {
                keys.push(key);
                sorted.push(entry);
            }
        }
        if last {
            runs.sources.push(Source::Memory(sorted.into_iter()));
            return Ok(());
        }
        let path = with_suffix(store, &format!(".run{}", runs.files.len()));
        let mut out = BufWriter::with_capacity(
            1 << 20,
            File::options().read(true).write(true).create(true).truncate(true).open(&path)?,
        );
        for entry in &sorted {
            out.write_all(&(entry.len() as u32).to_le_bytes())?;
            out.write_all(entry)?;
        }
        let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.seek(SeekFrom::Start(0))?;
        runs.files.push(path);
        runs.sources.push(Source::File(Framed::run(file)));
        Ok(())
    };
    scan_log(log, |entry| {
        let key = entry::key_of(entry).expect("a whole entry has a key");
        bytes += entry.len() + 64;
        chunk.push((key, seq, entry.to_vec()));
        seq += 1;
        if bytes >= chunk_bytes {
            spill(&mut chunk, &mut runs, false)?;
            bytes = 0;
        }
        Ok(())
    })?;
    spill(&mut chunk, &mut runs, true)?;
    Ok(runs)
}

/// Merges the old table and the sorted runs (later ones newer) into `writer`: the newest entry of
/// each key, deletions dropped.
fn merge(table: Option<&Table>, runs: Vec<Source>, mut writer: TableWriter) -> io::Result<Committed> {
    let mut sources: Vec<Source> = Vec::with_capacity(runs.len() + 1);
    if let Some(table) = table {
        sources.push(Source::Table(table.entries()?));
    }
    let first_run = sources.len();
    let mut changed = 0;
    sources.extend(runs);
    // The heap holds the head of each source: smallest key first, and of equal keys the newest
    // source (the highest number) first.
    let mut heads: Vec<Vec<u8>> = vec![Vec::new(); sources.len()];
    let mut heap = BinaryHeap::new();
    for (n, source) in sources.iter_mut().enumerate() {
        if source.next_into(&mut heads[n])? {
            heap.push(std::cmp::Reverse((entry::key_of(&heads[n]).expect("a key"), std::cmp::Reverse(n))));
        }
    }
    let mut last: Option<Key> = None;
    while let Some(std::cmp::Reverse((key, std::cmp::Reverse(n)))) = heap.pop() {
        if last != Some(key) {
            last = Some(key);
            changed += u64::from(n >= first_run);
            if !entry::is_deletion(&heads[n]) {
                writer.push(&heads[n])?;
            }
        }
        if sources[n].next_into(&mut heads[n])? {
            let next = entry::key_of(&heads[n]).expect("a key");
            if next <= key {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "a sorted source is out of order"));
            }
            heap.push(std::cmp::Reverse((next, std::cmp::Reverse(n))));
        }
    }
    Ok(Committed { kept: writer.finish()?, changed })
}

#[cfg(test)]
mod tests;

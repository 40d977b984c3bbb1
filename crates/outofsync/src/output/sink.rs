//! [`Sink`]: the one writer of an output. Whole lines, appended in batches by a thread of its own,
//! synced to disk as [`Fsync`] says.
//!
//! The fetch side serialises records into a batch in memory and hands whole batches over a
//! bounded channel; the writer thread does the blocking writes, so a slow disk or a slow reader
//! of stdout applies backpressure all the way to the input instead of blocking a runtime worker.
//! Every batch is one `write` of whole lines, so a killed write leaves at most one torn line, at
//! the end, which a resume cuts. The first failed write or sync ends the writer: a sync is never
//! retried, because after a failed `fsync` the kernel may have dropped the unwritten pages and a
//! second `fsync` would report success for data that is gone.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::{Destination, WriteError};
use crate::record::{Payload, Record};

/// Bytes collected before a batch is handed to the writer.
const BATCH: usize = 64 * 1024;
/// JSON bodies from this size on are not copied into the batch: the writer sends each from its
/// own buffer, in the same `writev` as the lines around it.
const SEPARATE_BODY: usize = 4 * 1024;
/// Batches in flight between the fetch side and the writer.
const BATCHES_AHEAD: usize = 16;
/// With [`Fsync::Interval`]: the longest a written record waits to be synced…
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// …and the most records written between two syncs.
pub const SYNC_RECORDS: u64 = 1_000;

/// When the output file is synced to disk (`fsync`); stdout is never synced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fsync {
    /// Every second or every 1,000 records, whichever comes first, and at the end: a power cut
    /// loses at most that much, which a resume fetches again.
    #[default]
    Interval,
    /// After every write: nothing acknowledged is lost, at a cost in speed on slow disks.
    Always,
    /// Never: the operating system writes when it likes (a crash of the process loses nothing;
    /// a power cut may lose any recent records, which a resume fetches again).
    Never,
}

impl Fsync {
    /// The names `--fsync` takes, in the order of the variants.
    pub const NAMES: [&'static str; 3] = ["interval", "always", "never"];
}

impl std::fmt::Display for Fsync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(Fsync::NAMES[*self as usize])
    }
}

impl std::str::FromStr for Fsync {
    type Err = crate::request::ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "interval" => Ok(Fsync::Interval),
            "always" => Ok(Fsync::Always),
            "never" => Ok(Fsync::Never),
            other => Err(crate::request::ParseError(format!(
                "unknown fsync policy {other:?} (use interval, always or never)"
            ))),
        }
    }
}

/// Decides when [`Fsync::Interval`] syncs.
#[derive(Debug)]
struct SyncDue {
    policy: Fsync,
    unsynced: u64,
    since: Option<Instant>,
}

impl SyncDue {
    fn new(policy: Fsync) -> Self {
        SyncDue { policy, unsynced: 0, since: None }
    }

    /// Counts a write of `records`; true if a sync is due now.
    fn wrote(&mut self, records: u64, now: Instant) -> bool {
        self.unsynced += records;
        self.since.get_or_insert(now);
        match self.policy {
            Fsync::Always => true,
            Fsync::Never => false,
            Fsync::Interval => self.unsynced >= SYNC_RECORDS || self.deadline().is_some_and(|d| now >= d),
        }
    }

    /// When the records written so far must be synced even if nothing more comes.
    fn deadline(&self) -> Option<Instant> {
        match self.policy {
            Fsync::Interval => self.since.map(|t| t + SYNC_INTERVAL),
            Fsync::Always | Fsync::Never => None,
        }
    }

    /// Whether anything written is not yet synced (and the policy syncs at all).
    fn pending(&self) -> bool {
        self.since.is_some() && self.policy != Fsync::Never
    }

    fn synced(&mut self) {
        self.unsynced = 0;
        self.since = None;
    }
}

/// One batch of whole lines.
struct LineBatch {
    /// The lines, but for the big JSON bodies.
    bytes: Vec<u8>,
    /// The big JSON bodies, in order, each with the place in `bytes` where it belongs.
    bodies: Vec<(usize, String)>,
    /// The bytes of the lines, bodies included.
    len: usize,
    records: u64,
}

/// The fetch side's handle on the writer.
pub struct Sink {
    batch: LineBatch,
    tx: Option<mpsc::Sender<LineBatch>>,
    thread: Option<JoinHandle<Result<(), WriteError>>>,
    name: String,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").field("name", &self.name).finish_non_exhaustive()
    }
}

enum Out {
    Stdout(io::Stdout),
    File(File),
}

impl Sink {
    /// Starts a writer that appends to `file` (opened for appending) and syncs it as `fsync` says
    /// if it is a regular file. Must be called within a tokio runtime (the interval between syncs
    /// is timed on it).
    ///
    /// Only a regular file is synced: `fsync` on `/dev/null`, a FIFO or a terminal fails with
    /// `EINVAL` and would end the run, yet there is nothing to make durable there — what a pipe's
    /// reader does with the records, at its own speed, is its business.
    ///
    /// # Errors
    /// The writer thread cannot be started.
    pub fn file(file: File, destination: &Destination, fsync: Fsync) -> Result<Sink, WriteError> {
        let regular = file.metadata().is_ok_and(|meta| meta.is_file());
        Self::start(Out::File(file), destination, if regular { fsync } else { Fsync::Never })
    }

    /// Starts a writer to standard output.
    ///
    /// # Errors
    /// The writer thread cannot be started.
    pub fn stdout() -> Result<Sink, WriteError> {
        Self::start(Out::Stdout(io::stdout()), &Destination::Stdout, Fsync::Never)
    }

    fn start(out: Out, destination: &Destination, fsync: Fsync) -> Result<Sink, WriteError> {
        let name = destination.to_string();
        let (tx, rx) = mpsc::channel(BATCHES_AHEAD);
        let runtime = Handle::current();
        let thread_name = name.clone();
        let thread = std::thread::Builder::new()
            .name("outofsync-writer".into())
            .spawn(move || write_batches(out, rx, &thread_name, fsync, &runtime))
            .map_err(|source| WriteError::Io { destination: name.clone(), source })?;
        Ok(Sink { batch: LineBatch::new(), tx: Some(tx), thread: Some(thread), name })
    }

    /// Adds a record; hands the batch over when it is full. A big JSON body is taken from the
    /// record rather than copied.
    ///
    /// # Errors
    /// The writer has stopped (its error comes from [`Sink::finish`]).
    pub async fn push(&mut self, record: Record) -> Result<(), WriterGone> {
        self.make_room(record.line_len_hint() - separate_body(&record)).await?;
        self.batch.add(record);
        self.hand_over_if_full().await
    }

    /// [`Sink::push`] for a record the caller keeps (the Python module hands its records to
    /// Python as well): its line is written into the batch at once, the body copied with it,
    /// where cloning the record for `push` would copy every field and the body first.
    ///
    /// # Errors
    /// The writer has stopped.
    pub async fn push_ref(&mut self, record: &Record) -> Result<(), WriterGone> {
        self.make_room(record.line_len_hint()).await?;
        self.batch.add_line(record);
        self.hand_over_if_full().await
    }

    /// Makes room for `len` more bytes of lines: a record that does not fit goes into a batch of
    /// its own, sized for it (growing the batch would copy what it holds).
    async fn make_room(&mut self, len: usize) -> Result<(), WriterGone> {
        if self.batch.bytes.len() + len > self.batch.bytes.capacity() {
            self.flush().await?;
            if self.batch.bytes.capacity() < len {
                self.batch.bytes = Vec::with_capacity(len);
            }
        }
        Ok(())
    }

    async fn hand_over_if_full(&mut self) -> Result<(), WriterGone> {
        if self.batch.len >= BATCH { self.flush().await } else { Ok(()) }
    }

    /// Hands over what is batched (done whenever no record is ready, so lines are not held back).
    ///
    /// # Errors
    /// The writer has stopped.
    pub async fn flush(&mut self) -> Result<(), WriterGone> {
        if self.batch.records == 0 {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, LineBatch::new());
        match &self.tx {
            Some(tx) => tx.send(batch).await.map_err(|_| WriterGone),
            None => Err(WriterGone),
        }
    }

    /// Writes what is left, syncs a file to disk (unless [`Fsync::Never`]) and stops the writer.
    ///
    /// # Errors
    /// The first write or sync error, if any happened.
    pub async fn finish(mut self) -> Result<(), WriteError> {
        let flushed = self.flush().await;
        drop(self.tx.take());
        let thread = self.thread.take().expect("finish runs once");
        let name = self.name.clone();
        let result = tokio::task::spawn_blocking(move || thread.join())
            .await
            .expect("joining does not panic")
            .unwrap_or_else(|_| {
                Err(WriteError::Io { destination: name, source: io::Error::other("the writer panicked") })
            });
        result?;
        flushed.map_err(|_| WriteError::Io {
            destination: self.name.clone(),
            source: io::Error::other("the writer stopped"),
        })
    }
}

impl LineBatch {
    fn new() -> Self {
        LineBatch { bytes: Vec::with_capacity(BATCH), bodies: Vec::new(), len: 0, records: 0 }
    }

    /// Adds the record's line; a big JSON body is kept as it is, and written from there.
    fn add(&mut self, mut record: Record) {
        let separate = separate_body(&record);
        if separate == 0 {
            return self.add_line(&record);
        }
        let before = self.bytes.len();
        let at = record.write_json_line_around_json(&mut self.bytes);
        if let (Some(at), Payload::Json(json)) = (at, std::mem::take(&mut record.payload)) {
            self.bodies.push((at, json));
        }
        self.len += self.bytes.len() - before + separate;
        self.records += 1;
    }

    /// Adds the record's whole line, its body copied in.
    fn add_line(&mut self, record: &Record) {
        let before = self.bytes.len();
        record.write_json_line(&mut self.bytes);
        self.len += self.bytes.len() - before;
        self.records += 1;
    }

    /// Writes the whole batch: one `write` of its bytes, or one `writev` of its bytes and its
    /// bodies in their places (more only if the system writes part of it).
    fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        if self.bodies.is_empty() {
            return out.write_all(&self.bytes);
        }
        let mut slices = Vec::with_capacity(2 * self.bodies.len() + 1);
        let mut from = 0;
        for (at, body) in &self.bodies {
            slices.push(IoSlice::new(&self.bytes[from..*at]));
            slices.push(IoSlice::new(body.as_bytes()));
            from = *at;
        }
        slices.push(IoSlice::new(&self.bytes[from..]));
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            match out.write_vectored(slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut slices, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The length of the record's JSON body if it is written from where it is, else 0.
fn separate_body(record: &Record) -> usize {
    match &record.payload {
        Payload::Json(json) if json.len() >= SEPARATE_BODY => json.len(),
        _ => 0,
    }
}

/// The writer stopped early; [`Sink::finish`] tells why.
#[derive(Debug)]
pub struct WriterGone;

/// The writer thread: ends when the channel closes (the fetch side is done) or at the first error.
fn write_batches(
    mut out: Out,
    mut rx: mpsc::Receiver<LineBatch>,
    name: &str,
    fsync: Fsync,
    runtime: &Handle,
) -> Result<(), WriteError> {
    // Timers are the runtime's: entered here, driven by its workers while this thread blocks.
    let _runtime = runtime.enter();
    let fail = |source: io::Error| WriteError::Io { destination: name.to_owned(), source };
    let sync_failed = |source: io::Error| WriteError::Sync { destination: name.to_owned(), source };
    let mut due = SyncDue::new(fsync);
    loop {
        let batch = match (&out, due.deadline()) {
            // Records are waiting to be synced: wait for more only until their time is up.
            (Out::File(file), Some(deadline)) => {
                let deadline = tokio::time::Instant::from_std(deadline);
                match runtime.block_on(tokio::time::timeout_at(deadline, rx.recv())) {
                    Ok(batch) => batch,
                    Err(_elapsed) => {
                        file.sync_data().map_err(sync_failed)?;
                        due.synced();
                        continue;
                    }
                }
            }
            _ => rx.blocking_recv(),
        };
        let Some(batch) = batch else { break };
        match &mut out {
            Out::File(file) => {
                batch.write_to(file).map_err(fail)?;
                if due.wrote(batch.records, Instant::now()) {
                    file.sync_data().map_err(sync_failed)?;
                    due.synced();
                }
            }
            Out::Stdout(stdout) => {
                let mut lock = stdout.lock();
                batch.write_to(&mut lock).and_then(|()| lock.flush()).map_err(|e| {
                    if e.kind() == io::ErrorKind::BrokenPipe { WriteError::BrokenPipe } else { fail(e) }
                })?;
            }
        }
    }
    if let Out::File(file) = &out
        && due.pending()
    {
        file.sync_data().map_err(sync_failed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most a few bytes per call, as a slow pipe may.
    struct Trickle(Vec<u8>);

    impl Write for Trickle {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            let n = data.len().min(7);
            self.0.extend_from_slice(&data[..n]);
            Ok(n)
        }

        fn write_vectored(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
            let first = slices.iter().find(|s| !s.is_empty()).map_or(&[][..], |s| &s[..]);
            self.write(first)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn big_bodies_written_from_their_records_make_the_same_lines() {
        let record = |i: u64, n: usize| Record {
            i,
            ok: true,
            payload: Payload::Json(format!("[\"{}\"]", "x".repeat(n))),
            ..Record::default()
        };
        let sizes = [10, SEPARATE_BODY, 20, 70_000, SEPARATE_BODY - 5, 0];
        let expected: String = sizes.iter().zip(0..).map(|(&n, i)| record(i, n).to_json_line()).collect();
        let mut batch = LineBatch::new();
        for (&n, i) in sizes.iter().zip(0..) {
            batch.add(record(i, n));
        }
        assert_eq!(batch.bodies.len(), 2, "the two big bodies are not copied");
        assert_eq!(batch.len, expected.len());
        let mut out = Trickle(Vec::new());
        batch.write_to(&mut out).unwrap();
        assert_eq!(String::from_utf8(out.0).unwrap(), expected);
        let mut whole = Vec::new();
        batch.write_to(&mut whole).unwrap();
        assert_eq!(String::from_utf8(whole).unwrap(), expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn records_pushed_by_reference_make_the_same_lines_as_records_given() {
        let record = |i: u64, n: usize| Record {
            i,
            ok: true,
            payload: Payload::Json(format!("[\"{}\"]", "x".repeat(n))),
            ..Record::default()
        };
        let sizes = [10, SEPARATE_BODY, 70_000, 3 * BATCH, 0, 20];
        let expected: String = sizes.iter().zip(0..).map(|(&n, i)| record(i, n).to_json_line()).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        let file = File::create(&path).unwrap();
        let mut sink = Sink::file(file, &Destination::File(path.clone()), Fsync::Never).unwrap();
        for (&n, i) in sizes.iter().zip(0..) {
            let record = record(i, n);
            if i % 2 == 0 { sink.push_ref(&record).await.unwrap() } else { sink.push(record).await.unwrap() }
        }
        sink.finish().await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    }

    #[test]
    fn interval_syncs_after_a_thousand_records_or_a_second() {
        let start = Instant::now();
        let mut due = SyncDue::new(Fsync::Interval);
        assert!(!due.pending() && due.deadline().is_none());
        assert!(!due.wrote(999, start));
        assert_eq!(due.deadline(), Some(start + SYNC_INTERVAL));
        assert!(due.wrote(1, start), "the 1,000th record");
        due.synced();
        assert!(!due.wrote(1, start));
        assert!(due.wrote(1, start + SYNC_INTERVAL), "a second after the first unsynced write");
        due.synced();
        assert!(!due.pending());
    }

    #[test]
    fn always_syncs_every_write_and_never_syncs_nothing() {
        let now = Instant::now();
        let mut always = SyncDue::new(Fsync::Always);
        assert!(always.wrote(1, now) && always.deadline().is_none());
        let mut never = SyncDue::new(Fsync::Never);
        assert!(!never.wrote(1_000_000, now));
        assert!(!never.pending() && never.deadline().is_none());
    }
}

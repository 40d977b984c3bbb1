//! Reads sources (files, stdin, URLs given as arguments) into a lazy, bounded stream of [`Input`].
//!
//! Reading and parsing run on a thread of their own with blocking I/O (what tokio does for stdin
//! anyway): the fetch loop's workers never parse input, and the bounded channel between the two is
//! the backpressure that keeps memory O(concurrency) whatever the input size. The thread ends when
//! the input ends or when the stream is dropped.
//!
//! Inputs cross to the runtime in batches of up to [`BATCH`]: one wake-up of the fetch loop per
//! batch instead of one per input. A batch is never held back while the thread waits for more
//! input: the source hands over what is pending before every read that may block (a slow pipe
//! into stdin sees each line fetched as it arrives).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use futures_util::{Stream, StreamExt, stream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use serde_json::Value;

use super::line::{Parsed, count_line, expand, parse_row_line, row_request};
use super::{Input, InvalidInput, LineDefaults, RowFormat, Rows, parse_line, quote};

/// The longest input line read; a longer one becomes an `invalid_request` record.
pub const MAX_LINE: usize = 16 << 20;
/// Inputs handed to the fetch loop at once.
pub const BATCH: usize = 64;
/// Batches parsed ahead of the fetch loop (so up to 1,024 inputs).
const AHEAD: usize = 16;

/// Where input comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Standard input, one request per line.
    Stdin,
    /// A file, one request per line.
    File(PathBuf),
    /// A URL given directly (globs expanded).
    Url(String),
}

impl Source {
    /// Reads a command-line argument: `-` is stdin, anything with `://` a URL, the rest a file.
    pub fn from_arg(arg: &str) -> Source {
        if arg == "-" {
            Source::Stdin
        } else if arg.contains("://") {
            Source::Url(arg.to_owned())
        } else {
            Source::File(arg.into())
        }
    }
}

/// The error of an input file that cannot be opened, in words: `cannot open PATH: why`, and when
/// it is missing but reads as a URL without its scheme (`api.example.com/users`), that guess —
/// the argument was taken for a file because it has no `://`.
pub fn cannot_open(path: &Path, e: io::Error) -> io::Error {
    let mut message = format!("cannot open {}: {e}", path.display());
    if e.kind() == io::ErrorKind::NotFound
        && let Some(text) = path.to_str()
        && super::looks_like_url(text)
    {
        message += &format!(
            "; it looks like a URL without its scheme, which is read as a file name: write https://{text}"
        );
    }
    io::Error::new(e.kind(), message)
}

enum Opened {
    Lines { source: Box<dyn Read + Send>, name: String },
    Url(String),
}

/// A running reader: the stream of inputs, and what went wrong with the input if anything did.
#[derive(Debug)]
pub struct Reader {
    rx: mpsc::Receiver<Vec<Input>>,
    failure: Arc<Mutex<Option<io::Error>>>,
}

impl Reader {
    /// Opens every source (so a missing file fails now, before anything is fetched) and starts
    /// reading them in order on a thread of its own.
    ///
    /// # Errors
    /// A file cannot be opened.
    pub fn spawn(sources: Vec<Source>, defaults: LineDefaults) -> io::Result<Reader> {
        let mut opened = Vec::with_capacity(sources.len());
        for source in sources {
            opened.push(match source {
                Source::Stdin => Opened::Lines { source: Box::new(io::stdin()), name: "stdin".into() },
                Source::File(path) => {
                    let file = File::open(&path).map_err(|e| cannot_open(&path, e))?;
                    Opened::Lines { source: Box::new(file), name: path.display().to_string() }
                }
                Source::Url(url) => Opened::Url(url),
            });
        }
        let (tx, rx) = mpsc::channel(AHEAD);
        let failure = Arc::new(Mutex::new(None));
        let failed = failure.clone();
        std::thread::Builder::new().name("outofsync-reader".into()).spawn(move || {
            let pending = Pending::new(tx);
            let result = read_all(opened, &defaults, &pending);
            _ = pending.flush();
            if let Err(e) = result {
                *failed.lock().unwrap() = Some(e);
            }
        })?;
        Ok(Reader { rx, failure })
    }

    /// Splits into the stream of inputs and a handle that tells, once the stream has ended,
    /// whether it ended because the input failed (an I/O error mid-file).
    pub fn into_parts(self) -> (impl Stream<Item = Input> + Send + 'static, ReadStatus) {
        (ReceiverStream::new(self.rx).flat_map(stream::iter), ReadStatus { failure: self.failure })
    }
}

/// Whether the input was read to its end.
#[derive(Debug)]
pub struct ReadStatus {
    failure: Arc<Mutex<Option<io::Error>>>,
}

impl ReadStatus {
    /// The I/O error that stopped the reading, if one did.
    pub fn take_error(&self) -> Option<io::Error> {
        self.failure.lock().unwrap().take()
    }
}

/// The channel closed: the consumer is gone, so reading stops quietly.
struct Closed;

/// Inputs parsed but not yet handed over. Shared, on the reader thread only, by the parser (which
/// adds to it) and the source (which hands it over before a read that may block).
#[derive(Clone)]
struct Pending(Rc<RefCell<InputBatch>>);

struct InputBatch {
    inputs: Vec<Input>,
    tx: mpsc::Sender<Vec<Input>>,
}

impl Pending {
    fn new(tx: mpsc::Sender<Vec<Input>>) -> Pending {
        Pending(Rc::new(RefCell::new(InputBatch { inputs: Vec::with_capacity(BATCH), tx })))
    }

    fn push(&self, input: Input) -> Result<(), Closed> {
        let full = {
            let mut batch = self.0.borrow_mut();
            batch.inputs.push(input);
            batch.inputs.len() >= BATCH
        };
        if full { self.flush() } else { Ok(()) }
    }

    fn flush(&self) -> Result<(), Closed> {
        let (inputs, tx) = {
            let mut batch = self.0.borrow_mut();
            if batch.inputs.is_empty() {
                return Ok(());
            }
            (std::mem::replace(&mut batch.inputs, Vec::with_capacity(BATCH)), batch.tx.clone())
        };
        tx.blocking_send(inputs).map_err(|_| Closed)
    }
}

/// A source that hands over the pending inputs before each read (buffered readers above it read
/// only when their buffer is empty, that is, exactly when the next read may wait). When the
/// consumer is gone it reads as the end of the input, so reading stops quietly.
struct FlushFirst {
    source: Box<dyn Read + Send>,
    pending: Pending,
}

impl Read for FlushFirst {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.pending.flush() {
            Ok(()) => self.source.read(buf),
            Err(Closed) => Ok(0),
        }
    }
}

fn send(pending: &Pending, input: Input) -> Result<(), Closed> {
    pending.push(input)
}

fn read_all(sources: Vec<Opened>, defaults: &LineDefaults, tx: &Pending) -> io::Result<()> {
    for source in sources {
        let result = match (source, &defaults.rows) {
            (Opened::Url(url), None) => {
                emit(parse_line(&url, None, defaults), None, defaults, tx).map(|()| Ok(()))
            }
            (Opened::Url(url), Some(_)) => {
                let message = format!(
                    "{} is a URL, not a file of rows (with --url-template, give files or -)",
                    quote(&url)
                );
                send(tx, InvalidInput::new(message).into()).map(|()| Ok(()))
            }
            (Opened::Lines { source, name }, rows) => {
                let mut reader =
                    BufReader::with_capacity(256 * 1024, FlushFirst { source, pending: tx.clone() });
                lines_or_rows(&mut reader, &name, defaults, rows.as_ref(), tx)
            }
        };
        match result {
            Err(Closed) => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(())) => {}
        }
    }
    Ok(())
}

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads one source of lines: requests, or rows for the templates.
fn lines_or_rows(
    reader: &mut dyn BufRead,
    name: &str,
    defaults: &LineDefaults,
    rows: Option<&Rows>,
    tx: &Pending,
) -> Result<io::Result<()>, Closed> {
    // A byte order mark (Windows editors write one) is not part of the first line.
    match reader.fill_buf() {
        Ok(start) if start.starts_with(BOM) => reader.consume(BOM.len()),
        Ok(_) => {}
        Err(e) => return Ok(Err(io::Error::new(e.kind(), format!("reading {name}: {e}")))),
    }
    match rows {
        None => read_lines(reader, name, tx, |text, line| {
            emit(parse_line(text, Some(line), defaults), Some(line), defaults, tx)
        }),
        Some(rows) => match rows.format {
            RowFormat::Jsonl => read_lines(reader, name, tx, |text, line| {
                emit(parse_row_line(text, line, defaults, rows), Some(line), defaults, tx)
            }),
            RowFormat::Csv => read_csv(reader, name, defaults, rows, tx),
        },
    }
}

/// Reads lines and hands each (or the news that it is too long or not UTF-8) to `line_input`.
fn read_lines(
    reader: &mut dyn BufRead,
    name: &str,
    tx: &Pending,
    mut line_input: impl FnMut(&str, u64) -> Result<(), Closed>,
) -> Result<io::Result<()>, Closed> {
    let mut buf = Vec::with_capacity(4096);
    let mut line = 0u64;
    loop {
        buf.clear();
        line += 1;
        let read = match read_line_capped(reader, &mut buf, MAX_LINE) {
            Ok(read) => read,
            Err(e) => {
                return Ok(Err(io::Error::new(e.kind(), format!("reading {name} at line {line}: {e}"))));
            }
        };
        let invalid = match read {
            LineRead::Eof => return Ok(Ok(())),
            LineRead::TooLong => InvalidInput::new(format!("line is longer than {MAX_LINE} bytes")),
            LineRead::Line => match std::str::from_utf8(&buf) {
                Ok(text) => {
                    line_input(text, line)?;
                    continue;
                }
                Err(e) => InvalidInput::new(format!("not valid UTF-8: {e}")),
            },
        };
        send(tx, invalid.at_line(line).into())?;
    }
}

/// Reads CSV rows (the first row names the fields); a row that does not fit is an
/// `invalid_request` naming its line, and reading goes on.
fn read_csv(
    reader: &mut dyn BufRead,
    name: &str,
    defaults: &LineDefaults,
    rows: &Rows,
    tx: &Pending,
) -> Result<io::Result<()>, Closed> {
    let marks = LineMarks::default();
    let marked = Marked { inner: reader, marks: marks.clone() };
    let mut csv = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(marked);
    let headers = match csv.headers() {
        Ok(headers) => headers.clone(),
        Err(e) if e.is_io_error() => return Ok(Err(io::Error::other(format!("reading {name}: {e}")))),
        Err(e) => {
            return send(tx, InvalidInput::new(format!("bad CSV header row: {e}")).at_line(1).into())
                .map(|()| Ok(()));
        }
    };
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => return Ok(Ok(())),
            Ok(true) => {
                let line = record.position().map_or(0, |p| marks.line_at(p.byte()));
                if record.len() != headers.len() {
                    let message =
                        format!("row has {}, the header row {}", fields(record.len()), headers.len());
                    send(tx, InvalidInput::new(message).at_line(line).into())?;
                    continue;
                }
                let row = headers
                    .iter()
                    .zip(record.iter())
                    .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                    .collect();
                emit(row_request(row, line, defaults, rows), Some(line), defaults, tx)?;
            }
            Err(e) if e.is_io_error() => return Ok(Err(io::Error::other(format!("reading {name}: {e}")))),
            Err(e) => {
                let line = e.position().map_or(0, |p| marks.line_at(p.byte()));
                send(tx, InvalidInput::new(format!("bad CSV row: {e}")).at_line(line).into())?;
            }
        }
    }
}

fn fields(n: usize) -> String {
    crate::stats::plural(n as u64, "field", "fields")
}

/// The line each CSV record starts on, counted here rather than taken from the csv crate: with
/// CRLF line endings (Excel's, and RFC 4180's) its `Position::line` is one too low, because the
/// LF of a record's CRLF is consumed only when the next record is read (rust-csv#395); and after
/// blank lines it names the first blank one. What it does get right is the byte offset, so
/// [`Marked`] notes where every CR and LF is as csv reads, and a record's line follows from its
/// offset.
#[derive(Clone, Default)]
struct LineMarks(Rc<RefCell<Marks>>);

#[derive(Default)]
struct Marks {
    /// The offsets of the CRs and LFs read and not yet behind a record, with whether each is an LF.
    /// Records come in order, so only those of the bytes csv has read ahead are ever kept.
    ends: VecDeque<(u64, bool)>,
    /// Bytes read so far.
    read: u64,
    /// LFs before the first of `ends`.
    lfs_before: u64,
}

impl LineMarks {
    /// The line (from 1) of the record that csv says starts at `byte`; offsets must not go back.
    fn line_at(&self, byte: u64) -> u64 {
        let mut marks = self.0.borrow_mut();
        let mut start = byte;
        while let Some(&(offset, lf)) = marks.ends.front() {
            if offset > start {
                break;
            }
            // A line end at the reported start (the LF left of a CRLF, a blank line) is not
            // part of the record: it starts after it.
            if offset == start {
                start += 1;
            }
            marks.lfs_before += u64::from(lf);
            marks.ends.pop_front();
        }
        marks.lfs_before + 1
    }
}

/// A reader that notes the line ends it hands on in its [`LineMarks`].
struct Marked<R> {
    inner: R,
    marks: LineMarks,
}

impl<R: Read> Read for Marked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut marks = self.marks.0.borrow_mut();
        let base = marks.read;
        for at in memchr::memchr2_iter(b'\r', b'\n', &buf[..n]) {
            marks.ends.push_back((base + at as u64, buf[at] == b'\n'));
        }
        marks.read += n as u64;
        Ok(n)
    }
}

fn emit(parsed: Parsed, line: Option<u64>, defaults: &LineDefaults, tx: &Pending) -> Result<(), Closed> {
    match parsed {
        Parsed::Skip => Ok(()),
        Parsed::One(spec) => send(tx, Input::Request(spec)),
        Parsed::Invalid(invalid) => send(tx, invalid.into()),
        Parsed::Glob(glob) => {
            for spec in expand(glob, line, defaults) {
                send(tx, spec.into())?;
            }
            Ok(())
        }
    }
}

enum LineRead {
    Line,
    TooLong,
    Eof,
}

/// Reads one line (without its `\n`) into `buf`, keeping at most `cap` bytes; a longer line is
/// consumed to its end and reported as [`LineRead::TooLong`], so memory stays bounded.
fn read_line_capped(reader: &mut dyn BufRead, buf: &mut Vec<u8>, cap: usize) -> io::Result<LineRead> {
    let mut seen_any = false;
    let mut too_long = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(match (seen_any, too_long) {
                (false, _) => LineRead::Eof,
                (true, true) => LineRead::TooLong,
                (true, false) => LineRead::Line,
            });
        }
        seen_any = true;
        let (chunk, used, done) = match memchr::memchr(b'\n', available) {
            Some(at) => (&available[..at], at + 1, true),
            None => (available, available.len(), false),
        };
        if !too_long {
            if buf.len() + chunk.len() > cap {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if done {
            return Ok(if too_long { LineRead::TooLong } else { LineRead::Line });
        }
    }
}

/// Counts the inputs of `sources` (files and URLs; `None` if one is stdin, whose length cannot be
/// known in advance, or a file cannot be read). Meant for a background thread: it reads the files
/// once more, at disk speed.
pub fn count_inputs(sources: &[Source], defaults: &LineDefaults) -> Option<u64> {
    let mut total = 0u64;
    for source in sources {
        match source {
            Source::Stdin => return None,
            Source::Url(url) => total += count_line(url, defaults).max(1),
            Source::File(path) if defaults.rows.as_ref().is_some_and(|r| r.format == RowFormat::Csv) => {
                let file = BufReader::with_capacity(256 * 1024, File::open(path).ok()?);
                total += csv::ReaderBuilder::new().flexible(true).from_reader(file).records().count() as u64;
            }
            Source::File(path) => {
                let mut reader = BufReader::with_capacity(256 * 1024, File::open(path).ok()?);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match read_line_capped(&mut reader, &mut buf, MAX_LINE).ok()? {
                        LineRead::Eof => break,
                        LineRead::TooLong => total += 1,
                        LineRead::Line => {
                            total += std::str::from_utf8(&buf).map_or(1, |t| count_line(t, defaults));
                        }
                    }
                }
            }
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line of each record (or bad row) of `text`, as `read_csv` numbers them.
    fn csv_lines(text: &str) -> Vec<u64> {
        let marks = LineMarks::default();
        let marked = Marked { inner: text.as_bytes(), marks: marks.clone() };
        let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(marked);
        csv.records().map(|r| marks.line_at(r.unwrap().position().unwrap().byte())).collect()
    }

    #[test]
    fn csv_records_are_numbered_by_their_own_line_whatever_the_line_endings() {
        let lf = "id,name\nA,x\n\nB,y\nC,\"two\nlines\"\nD,z\n";
        assert_eq!(csv_lines(lf), [2, 4, 5, 7], "blank line 3; C spans lines 5 and 6");
        assert_eq!(csv_lines(&lf.replace('\n', "\r\n")), [2, 4, 5, 7], "CRLF, as Excel writes");
        assert_eq!(csv_lines("id\r\n1\n2\r\n\r\n3"), [2, 3, 5], "mixed, and no final line end");
    }

    #[test]
    fn long_lines_are_cut_and_reading_goes_on() {
        let text = format!("{}\nnext\n\nlast", "x".repeat(50));
        let mut reader = io::Cursor::new(text.into_bytes());
        let mut buf = Vec::new();
        assert!(matches!(read_line_capped(&mut reader, &mut buf, 10).unwrap(), LineRead::TooLong));
        buf.clear();
        assert!(matches!(read_line_capped(&mut reader, &mut buf, 10).unwrap(), LineRead::Line));
        assert_eq!(buf, b"next");
        buf.clear();
        assert!(matches!(read_line_capped(&mut reader, &mut buf, 10).unwrap(), LineRead::Line));
        assert!(buf.is_empty());
        buf.clear();
        assert!(matches!(read_line_capped(&mut reader, &mut buf, 10).unwrap(), LineRead::Line));
        assert_eq!(buf, b"last");
        buf.clear();
        assert!(matches!(read_line_capped(&mut reader, &mut buf, 10).unwrap(), LineRead::Eof));
    }
}

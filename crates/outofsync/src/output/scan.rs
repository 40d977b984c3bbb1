//! Reading an output back: which inputs it already records, and where its whole lines end.
//!
//! This is the one place that decides what "done" means for a resume. An input is *done* when its
//! record is in the file — or, for a paginated walk (records keyed by `(i, page)`), when its last
//! page is: a page record without a `next`, or a failed one. A walk cut off after page *k* (its
//! record names a `next`) is *partial*, and a resume goes on from that next page as page *k+1*.

use std::collections::HashMap;
use std::io::{self, BufRead, Read};

use serde::Deserialize;

/// The largest `i` a record may have: far beyond any real input, and a bitset of 8 GiB at most,
/// so a corrupted number cannot make a resume allocate without bound.
pub const MAX_INDEX: u64 = 1 << 36;

/// The inputs an output records: a bitset of the done ones (100 million inputs: 12.5 MB) and the
/// paginated walks left half-way (at most the number that were running, so a small map).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Done {
    words: Vec<u64>,
    count: u64,
    partial: HashMap<u64, Partial>,
}

/// Where a paginated walk that was cut off goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partial {
    /// The page to fetch next, from 0.
    pub page: u32,
    /// Its URL.
    pub url: String,
}

impl Done {
    /// Marks `i` done; false if it already was.
    pub fn insert(&mut self, i: u64) -> bool {
        let (word, bit) = ((i / 64) as usize, i % 64);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let was = self.words[word] & (1 << bit) != 0;
        self.words[word] |= 1 << bit;
        self.count += u64::from(!was);
        !was
    }

    /// Whether `i` has a record.
    pub fn contains(&self, i: u64) -> bool {
        self.words.get((i / 64) as usize).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// How many inputs have a record.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no input has a record.
    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.partial.is_empty()
    }

    /// Where the walk of input `i` goes on, if it was cut off half-way.
    pub fn partial(&self, i: u64) -> Option<&Partial> {
        self.partial.get(&i)
    }

    /// Records that input `i`'s walk goes on at `page`, from `url`.
    pub fn set_partial(&mut self, i: u64, page: u32, url: String) {
        self.partial.insert(i, Partial { page, url });
    }

    /// Where each walk cut off half-way goes on.
    pub fn partials(&self) -> impl Iterator<Item = &Partial> {
        self.partial.values()
    }

    /// How many walks were cut off half-way.
    pub fn partial_len(&self) -> u64 {
        self.partial.len() as u64
    }

    /// Takes in one record; false if it repeats what is already recorded (an input recorded
    /// twice, or a page of a walk recorded twice). A child's record (`--then`) is not its
    /// input's: the children of an output are read by `output::children`.
    pub(crate) fn record(&mut self, entry: &Entry) -> bool {
        if entry.parent.is_some() {
            return true;
        }
        if self.contains(entry.i) {
            return false;
        }
        let Some(page) = entry.page else {
            return self.insert(entry.i);
        };
        if self.partial.get(&entry.i).is_some_and(|p| page < p.page) {
            return false;
        }
        match (&entry.next, entry.ok) {
            (Some(next), true) => {
                self.partial.insert(entry.i, Partial { page: page.saturating_add(1), url: next.clone() });
            }
            // The walk's last page, or the page it failed on: the input is done.
            _ => {
                self.partial.remove(&entry.i);
                self.insert(entry.i);
            }
        }
        true
    }
}

/// What a record line says about its input: the key, whether it succeeded, and where a walk goes.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// The input index.
    pub i: u64,
    /// Whether the record is a success.
    pub ok: bool,
    /// The page, when paginating.
    #[serde(default)]
    pub page: Option<u32>,
    /// The page's URL.
    #[serde(default)]
    pub url: Option<String>,
    /// The next page's URL, when there is one.
    #[serde(default)]
    pub next: Option<String>,
    /// For a child request's record, its parent.
    #[serde(default)]
    pub parent: Option<EntryParent>,
}

/// The parent named by a child's record.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
pub struct EntryParent {
    /// The parent's `i`.
    pub i: u64,
    /// The parent's page.
    #[serde(default)]
    pub page: Option<u32>,
}

/// What [`scan`] found.
#[derive(Clone, Debug, Default)]
pub struct Scanned {
    /// The inputs recorded (failed ones included), and walks cut off half-way.
    pub done: Done,
    /// Records that failed (`"ok":false`).
    pub failed: u64,
    /// Bytes of whole record lines: where the file should end.
    pub whole: u64,
    /// Bytes after them: a line cut short by a killed write (no `\n`), to be removed.
    pub torn: u64,
}

/// Why an output cannot be resumed as it is.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The output could not be read.
    #[error("cannot read it: {0}")]
    Io(#[from] io::Error),
    /// A whole line (one that ends in `\n`) is not a record: not a torn write, so not repaired.
    #[error("line {line} is not a record of outofsync ({why}); it was not written by a run of this output")]
    NotARecord {
        /// The line, from 1.
        line: u64,
        /// What is wrong with it.
        why: String,
    },
    /// Two records of one input (or of one page): the file was not written by runs of one job.
    #[error("line {line} records input {i} a second time")]
    Twice {
        /// The input.
        i: u64,
        /// The line of the second record, from 1.
        line: u64,
    },
}

/// Reads an output from its start: every whole line must be a record, and no input (or page) may
/// be recorded twice; bytes after the last `\n` are a torn write. `each` sees every record with
/// its line (`\n` included), in file order, to copy the ones it keeps.
///
/// # Errors
/// The output cannot be read, holds a whole line that is not a record, or records an input
/// twice; or `each` fails.
pub fn scan<R: Read>(
    reader: R,
    mut each: impl FnMut(&Entry, &[u8]) -> io::Result<()>,
) -> Result<Scanned, ScanError> {
    let mut reader = io::BufReader::with_capacity(1 << 20, reader);
    let mut scanned = Scanned::default();
    let mut line = Vec::with_capacity(64 * 1024);
    let mut number = 0u64;
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            scanned.torn = read as u64;
            break;
        }
        number += 1;
        let entry = parse(&line).map_err(|why| ScanError::NotARecord { line: number, why })?;
        if !scanned.done.record(&entry) {
            return Err(ScanError::Twice { i: entry.i, line: number });
        }
        scanned.failed += u64::from(!entry.ok);
        scanned.whole += read as u64;
        each(&entry, &line)?;
    }
    Ok(scanned)
}

fn parse(line: &[u8]) -> Result<Entry, String> {
    let entry: Entry = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    if entry.i > MAX_INDEX {
        return Err(format!("i = {} is over the largest index, {MAX_INDEX}", entry.i));
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(text: &[u8]) -> Result<(Scanned, Vec<u64>), ScanError> {
        let mut seen = Vec::new();
        let scanned = scan(text, |e, _| {
            seen.push(e.i);
            Ok(())
        })?;
        Ok((scanned, seen))
    }

    #[test]
    fn done_is_a_bitset_that_counts_each_index_once() {
        let mut done = Done::default();
        assert!(done.insert(0) && done.insert(64) && done.insert(1_000_000));
        assert!(!done.insert(64));
        assert_eq!(done.len(), 3);
        assert!(done.contains(1_000_000) && !done.contains(1) && !done.contains(u64::MAX / 2));
    }

    #[test]
    fn a_torn_tail_is_measured_and_whole_lines_are_kept() {
        let text = b"{\"i\":0,\"ok\":true}\n{\"i\":2,\"ok\":false,\"error\":{}}\n{\"i\":1,\"o";
        let (scanned, seen) = scan_all(text).unwrap();
        assert_eq!(seen, [0, 2]);
        assert_eq!(scanned.failed, 1);
        assert_eq!(scanned.whole as usize + scanned.torn as usize, text.len());
        assert_eq!(&text[scanned.whole as usize..], b"{\"i\":1,\"o");
    }

    #[test]
    fn a_whole_line_that_is_not_a_record_is_refused_not_repaired() {
        let err = scan_all(b"{\"i\":0,\"ok\":true}\ngarbage\n").unwrap_err();
        assert!(matches!(err, ScanError::NotARecord { line: 2, .. }), "{err}");
        let err = scan_all(b"{\"i\":99999999999999,\"ok\":true}\n").unwrap_err();
        assert!(err.to_string().contains("largest index"), "{err}");
    }

    #[test]
    fn a_walk_cut_off_goes_on_from_its_next_page_and_a_finished_one_is_done() {
        let text = concat!(
            r#"{"i":0,"page":0,"ok":true,"next":"http://a.test/p1"}"#,
            "\n",
            r#"{"i":1,"page":0,"ok":true,"next":"http://a.test/q1"}"#,
            "\n",
            r#"{"i":0,"page":1,"ok":true,"next":"http://a.test/p2"}"#,
            "\n",
            r#"{"i":1,"page":1,"ok":true}"#,
            "\n",
            r#"{"i":2,"page":0,"ok":false,"url":"http://a.test/r0"}"#,
            "\n",
        );
        let (scanned, _) = scan_all(text.as_bytes()).unwrap();
        let done = &scanned.done;
        assert_eq!(done.partial(0), Some(&Partial { page: 2, url: "http://a.test/p2".into() }));
        assert!(!done.contains(0) && done.contains(1) && done.contains(2));
        assert_eq!((done.len(), done.partial_len()), (2, 1));
        let again = format!("{text}{}\n", r#"{"i":0,"page":1,"ok":true,"next":"http://a.test/p2"}"#);
        assert!(matches!(scan_all(again.as_bytes()).unwrap_err(), ScanError::Twice { i: 0, line: 6 }));
        let after = format!("{text}{}\n", r#"{"i":1,"page":2,"ok":true}"#);
        assert!(matches!(scan_all(after.as_bytes()).unwrap_err(), ScanError::Twice { i: 1, line: 6 }));
    }

    #[test]
    fn an_input_recorded_twice_is_refused() {
        let text = b"{\"i\":0,\"ok\":true}\n{\"i\":0,\"ok\":true}\n";
        assert!(matches!(scan_all(text).unwrap_err(), ScanError::Twice { i: 0, line: 2 }));
    }
}

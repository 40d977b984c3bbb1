//! Reading an output back: which inputs it already records, and where its whole lines end.
//!
//! This is the one place that decides what "done" means for a resume, so that when one input
//! can produce several records (pagination: a key of `(i, page)`), only [`Done`] and
//! [`scan`] change, not their callers.

use std::io::{self, BufRead, Read};

use serde::Deserialize;

/// The largest `i` a record may have: far beyond any real input, and a bitset of 8 GiB at most,
/// so a corrupted number cannot make a resume allocate without bound.
pub const MAX_INDEX: u64 = 1 << 36;

/// The set of input indexes that have a record: one bit per input (100 million inputs: 12.5 MB).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Done {
    words: Vec<u64>,
    count: u64,
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
        self.count == 0
    }
}

/// What a record line says about its input: the key and whether it succeeded.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// The input index.
    pub i: u64,
    /// Whether the record is a success.
    pub ok: bool,
}

/// What [`scan`] found.
#[derive(Clone, Debug, Default)]
pub struct Scanned {
    /// The inputs recorded (failed ones included).
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
    /// Two records of one input: the file was not written by runs of one job.
    #[error("line {line} records input {i} a second time")]
    Twice {
        /// The input.
        i: u64,
        /// The line of the second record, from 1.
        line: u64,
    },
}

/// Reads an output from its start: every whole line must be a record, and no input may be
/// recorded twice; bytes after the last `\n` are a torn write. `each` sees every record with its
/// line (`\n` included), in file order, to copy the ones it keeps.
///
/// # Errors
/// The output cannot be read, holds a whole line that is not a record, or records an input
/// twice; or `each` fails.
pub fn scan<R: Read>(
    reader: R,
    mut each: impl FnMut(Entry, &[u8]) -> io::Result<()>,
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
        if !scanned.done.insert(entry.i) {
            return Err(ScanError::Twice { i: entry.i, line: number });
        }
        scanned.failed += u64::from(!entry.ok);
        scanned.whole += read as u64;
        each(entry, &line)?;
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
    fn an_input_recorded_twice_is_refused() {
        let text = b"{\"i\":0,\"ok\":true}\n{\"i\":0,\"ok\":true}\n";
        assert!(matches!(scan_all(text).unwrap_err(), ScanError::Twice { i: 0, line: 2 }));
    }
}

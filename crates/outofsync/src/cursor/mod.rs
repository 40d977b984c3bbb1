//! Incremental runs: `--cursor JQ` finds a value in each successful record's body (a timestamp or
//! an id), `--state FILE` keeps the largest one seen between runs, and the next run starts its
//! window there — `{cursor}` in its URL, header and body templates is that value, less a
//! `--lookback` margin.
//!
//! The state moves only when a run completes: [`Cursor::commit`] writes it atomically (a temporary
//! file, synced, renamed over the old one). An interrupted run leaves it as it was, so its
//! `--resume` fills the same `{cursor}` into the same requests; the resume reads the values of the
//! records already in the output back ([`Cursor::fold_output`]), so the state it writes is the
//! one an uninterrupted run would have written.
//!
//! The program reads the body as the record keeps it (after `--jq`), so what the output holds is
//! all a resume needs. It may give several values (`.items[].updated_at`): the largest counts;
//! `null` and no value are an empty page. Any other value (an object, a date in another format)
//! is an error that keeps the state from moving: the run's records are all written, and the next
//! run starts from the same place.

mod value;

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;

pub use value::{CursorValue, rfc3339, write_rfc3339};

use crate::engine::JqFilter;
use crate::record::Record;

/// How far before the saved cursor a run starts, to read again what changed late.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lookback {
    /// Nowhere: the saved cursor itself.
    #[default]
    None,
    /// A duration before a timestamp (`--lookback`).
    Duration(Duration),
    /// A count below an id (`--lookback-n`).
    Count(u64),
}

/// Why a cursor cannot be used or saved.
#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    /// The state file cannot be read, or holds no cursor.
    #[error("--state {}: {why}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// No state yet and no `--initial`.
    #[error(
        "--state {} does not exist yet: give --initial VALUE for the first run (a timestamp such \
         as 1970-01-01T00:00:00Z, or an id such as 0)",
        path.display()
    )]
    NoStart {
        /// The state file.
        path: PathBuf,
    },
    /// A bad `--initial` or lookback.
    #[error("{0}")]
    Usage(String),
    /// Records whose cursor could not be read: the state is left as it was.
    #[error(
        "--cursor: {count} successful record(s) gave no usable value ({first}); {} was not changed, \
         so the next run starts from the same cursor",
        path.display()
    )]
    Values {
        /// How many.
        count: u64,
        /// The first, in words.
        first: String,
        /// The state file.
        path: PathBuf,
    },
}

/// The cursor of a run: its program, its state file, and where this run's window starts.
#[derive(Debug)]
pub struct Cursor {
    filter: JqFilter,
    path: PathBuf,
    /// The saved cursor, if a run completed before.
    saved: Option<CursorValue>,
    /// `{cursor}` for this run: the saved one (or `--initial`) less the lookback.
    start: CursorValue,
}

/// The largest cursor value seen in a run so far, and the values that could not be read.
#[derive(Debug, Default)]
pub struct Tracker {
    max: Option<CursorValue>,
    errors: u64,
    first_error: Option<String>,
}

#[derive(Deserialize)]
struct Line<'a> {
    ok: bool,
    #[serde(borrow, default)]
    json: Option<&'a RawValue>,
}

impl Cursor {
    /// The cursor of a run: the program `filter`, the state in `path` (read now), `initial` for
    /// a first run, and the lookback.
    ///
    /// # Errors
    /// The state cannot be read; there is none and no `initial`; `initial` is not a cursor
    /// value; the lookback does not fit the value (a duration off an id, a count off a time).
    pub fn open(
        filter: JqFilter,
        path: &Path,
        initial: Option<&str>,
        lookback: Lookback,
    ) -> Result<Cursor, CursorError> {
        let state = |why: String| CursorError::State { path: path.to_owned(), why };
        let saved = match std::fs::read(path) {
            Ok(bytes) => {
                let doc: serde_json::Value =
                    serde_json::from_slice(&bytes).map_err(|e| state(format!("not a state file ({e})")))?;
                let value = doc.get("cursor").ok_or_else(|| state("it holds no \"cursor\"".into()))?;
                Some(
                    CursorValue::of_json(value)
                        .map_err(state)?
                        .ok_or_else(|| state("its cursor is null".into()))?,
                )
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(state(e.to_string())),
        };
        let from = match (&saved, initial) {
            (Some(saved), _) => saved.clone(),
            (None, Some(initial)) => CursorValue::parse_initial(initial)
                .map_err(|e| CursorError::Usage(format!("--initial: {e}")))?,
            (None, None) => return Err(CursorError::NoStart { path: path.to_owned() }),
        };
        let start = match lookback {
            Lookback::None => from,
            Lookback::Duration(back) => from.minus_duration(back).map_err(CursorError::Usage)?,
            Lookback::Count(n) => from.minus_n(n).map_err(CursorError::Usage)?,
        };
        Ok(Cursor { filter, path: path.to_owned(), saved, start })
    }

    /// `{cursor}` for this run.
    pub fn start(&self) -> &CursorValue {
        &self.start
    }

    /// The cursor a completed run saved, if any.
    pub fn saved(&self) -> Option<&CursorValue> {
        self.saved.as_ref()
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The program.
    pub fn filter(&self) -> &JqFilter {
        &self.filter
    }

    /// Takes in the cursor values of `record` (if it succeeded and kept a JSON body).
    pub fn observe(&self, tracker: &mut Tracker, record: &Record) {
        if let (true, Some(json)) = (record.ok, record.json_str()) {
            self.observe_json(tracker, json);
        }
    }

    fn observe_json(&self, tracker: &mut Tracker, json: &str) {
        let values = self.filter.run(json).and_then(|outputs| {
            outputs
                .into_iter()
                .map(|val| {
                    let value: serde_json::Value =
                        serde_json::from_str(&val.to_string()).map_err(|_| format!("{val} is not JSON"))?;
                    CursorValue::of_json(&value)
                })
                .collect::<Result<Vec<_>, String>>()
        });
        match values {
            Ok(values) => {
                for value in values.into_iter().flatten() {
                    tracker.take(value);
                }
            }
            Err(why) => {
                tracker.errors += 1;
                tracker.first_error.get_or_insert(why);
            }
        }
    }

    /// Takes in the values of the successful records already in the output `path` (a resume's).
    ///
    /// # Errors
    /// The output cannot be read.
    pub fn fold_output(&self, path: &Path, tracker: &mut Tracker) -> io::Result<()> {
        let reader = io::BufReader::with_capacity(1 << 20, File::open(path)?);
        for line in reader.split(b'\n') {
            let line = line?;
            // The output was checked and repaired as it was opened: every line is a record.
            if let Ok(Line { ok: true, json: Some(json) }) = serde_json::from_slice::<Line<'_>>(&line) {
                self.observe_json(tracker, json.get());
            }
        }
        Ok(())
    }

    /// Saves the largest of the saved cursor and the values of a completed run, atomically;
    /// returns it (`None`: still none).
    ///
    /// # Errors
    /// Some record's value could not be read (the state is then left as it was), or the file
    /// cannot be written.
    pub fn commit(&self, tracker: &Tracker) -> Result<Option<CursorValue>, CursorError> {
        if tracker.errors > 0 {
            return Err(CursorError::Values {
                count: tracker.errors,
                first: tracker.first_error.clone().unwrap_or_default(),
                path: self.path.clone(),
            });
        }
        let newest = match (&self.saved, &tracker.max) {
            (Some(saved), Some(seen)) if seen > saved => seen.clone(),
            (Some(saved), _) => saved.clone(),
            (None, Some(seen)) => seen.clone(),
            (None, None) => return Ok(None),
        };
        let doc = serde_json::json!({ "cursor": newest.to_json(), "jq": self.filter.source() });
        let text = serde_json::to_string_pretty(&doc).expect("a state serialises") + "\n";
        write_atomically(&self.path, text.as_bytes()).map_err(|e| CursorError::State {
            path: self.path.clone(),
            why: format!("cannot write it: {e}"),
        })?;
        Ok(Some(newest))
    }
}

impl Tracker {
    fn take(&mut self, value: CursorValue) {
        match &self.max {
            Some(max) if max.partial_cmp(&value).is_none() => {
                self.errors += 1;
                self.first_error
                    .get_or_insert(format!("{value} and {max} are not both timestamps or both ids"));
            }
            Some(max) if *max >= value => {}
            _ => self.max = Some(value),
        }
    }

    /// The largest value seen.
    pub fn max(&self) -> Option<&CursorValue> {
        self.max.as_ref()
    }
}

/// Writes `bytes` to `path` through a synced temporary file renamed over it.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    let mut file = File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, path)?;
    crate::output::sync_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> Record {
        Record { ok: true, payload: crate::record::Payload::Json(json.into()), ..Record::default() }
    }

    #[test]
    fn a_completed_run_saves_the_largest_instant_and_the_next_starts_there_less_the_lookback() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let filter = JqFilter::compile(".items[].updated_at").unwrap();
        assert!(matches!(
            Cursor::open(filter.clone(), &path, None, Lookback::None),
            Err(CursorError::NoStart { .. })
        ));
        let cursor =
            Cursor::open(filter.clone(), &path, Some("1970-01-01T00:00:00Z"), Lookback::None).unwrap();
        assert_eq!(cursor.start().to_string(), "1970-01-01T00:00:00Z");
        let mut tracker = Tracker::default();
        cursor.observe(&mut tracker, &record(r#"{"items":[{"updated_at":"2026-01-01T02:00:05+02:00"},{"updated_at":"2026-01-01T00:00:06Z"}]}"#));
        cursor.observe(&mut tracker, &record(r#"{"items":[]}"#));
        cursor.observe(
            &mut tracker,
            &Record { ok: false, ..record(r#"{"items":[{"updated_at":"2030-01-01T00:00:00Z"}]}"#) },
        );
        assert_eq!(cursor.commit(&tracker).unwrap().unwrap().to_string(), "2026-01-01T00:00:06Z");

        let next = Cursor::open(
            filter.clone(),
            &path,
            Some("1970-01-01T00:00:00Z"),
            Lookback::Duration(Duration::from_secs(10)),
        )
        .unwrap();
        assert_eq!(next.start().to_string(), "2025-12-31T23:59:56Z", "the state wins over --initial");
        // Nothing newer: the state stays.
        assert_eq!(next.commit(&Tracker::default()).unwrap().unwrap().to_string(), "2026-01-01T00:00:06Z");
    }

    #[test]
    fn a_value_that_is_not_a_cursor_keeps_the_state_from_moving() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let cursor =
            Cursor::open(JqFilter::compile(".id").unwrap(), &path, Some("0"), Lookback::Count(5)).unwrap();
        assert_eq!(cursor.start().to_json(), serde_json::json!(-5));
        let mut tracker = Tracker::default();
        cursor.observe(&mut tracker, &record(r#"{"id":7}"#));
        cursor.observe(&mut tracker, &record(r#"{"id":"yesterday"}"#));
        let err = cursor.commit(&tracker).unwrap_err().to_string();
        assert!(err.contains("1 successful record(s)") && err.contains("was not changed"), "{err}");
        assert!(!path.exists());
    }
}

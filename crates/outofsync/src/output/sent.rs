//! The sent log of `--at-most-once`: which non-idempotent requests went out, kept beside the output.
//!
//! A record line says an input is done; it cannot say that a request is on the wire. For GET,
//! sending again after a crash is harmless, but a POST that reached the server and then lost its
//! record to a `kill -9` would be sent twice by a plain resume. With a sent log, the engine notes
//! each non-idempotent request's index here (through [`Config::before_unsafe_send`]) before it is
//! sent, and a resume ends every noted input that has no record as a failure instead of sending
//! it again.
//!
//! The log is `OUTPUT.sent`: one decimal index and a newline per request, appended and synced
//! (unless `--fsync never`) before the request goes out. A line cut short by a crash was never
//! followed by a send, so a resume drops it.
//!
//! [`Config::before_unsafe_send`]: crate::engine::Config::before_unsafe_send

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::engine::SendHook;

/// The sent log of one run; opened by [`SentLog::open`] once the output is, and written by the
/// engine through [`SentLog::hook`].
#[derive(Debug)]
pub struct SentLog {
    file: Mutex<Option<File>>,
    sync: bool,
}

impl SentLog {
    /// A log, not yet open, that syncs every entry to disk if `sync`.
    pub fn new(sync: bool) -> Arc<Self> {
        Arc::new(Self { file: Mutex::new(None), sync })
    }

    /// Where the sent log of `output` lives.
    pub fn path_for(output: &Path) -> PathBuf {
        let mut name = output.as_os_str().to_owned();
        name.push(".sent");
        PathBuf::from(name)
    }

    /// Opens the log of `output`: emptied for a new run, read back and appended to for a resume.
    /// Returns the indexes an earlier run noted.
    ///
    /// # Errors
    /// `output` is not a regular file, or the log cannot be read or written.
    pub fn open(&self, output: &Path, resume: bool) -> io::Result<HashSet<u64>> {
        if !std::fs::metadata(output)?.is_file() {
            return Err(io::Error::other(format!(
                "--at-most-once keeps a log beside the output, and {} is not a regular file",
                output.display()
            )));
        }
        let path = Self::path_for(output);
        let mut noted = HashSet::new();
        let file = if resume {
            let text = match std::fs::read(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e),
            };
            // Only whole lines count: a torn last line was being written when the process died,
            // before its request could be sent.
            let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |end| end + 1);
            for line in text[..whole].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let index = std::str::from_utf8(line).ok().and_then(|l| l.parse().ok()).ok_or_else(|| {
                    io::Error::other(format!(
                        "{} holds {:?}, which is not an input index",
                        path.display(),
                        String::from_utf8_lossy(line)
                    ))
                })?;
                noted.insert(index);
            }
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            file.set_len(whole as u64)?;
            file
        } else {
            File::create(&path)?
        };
        file.sync_all()?;
        super::manifest::sync_dir(&path)?;
        *self.file.lock().expect("never poisoned: writes do not panic") = Some(file);
        Ok(noted)
    }

    /// The engine's hook: notes index `i` (and syncs it) before its request is sent. Until the log
    /// is open, and when it cannot be written, the request is not sent.
    pub fn hook(self: &Arc<Self>) -> SendHook {
        let log = self.clone();
        SendHook::new(move |i| {
            log.note(i).map_err(|e| format!("cannot note it in the --at-most-once log: {e}"))
        })
    }

    fn note(&self, i: u64) -> io::Result<()> {
        let mut file = self.file.lock().expect("never poisoned: writes do not panic");
        let file = file.as_mut().ok_or_else(|| io::Error::other("the log is not open"))?;
        file.write_all(format!("{i}\n").as_bytes())?;
        if self.sync { file.sync_data() } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_reads_whole_lines_and_appends_after_them() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out.jsonl");
        std::fs::write(&output, "").unwrap();
        let log = SentLog::new(false);
        assert!(log.open(&output, false).unwrap().is_empty());
        let hook = log.hook();
        hook.call(3).unwrap();
        hook.call(10).unwrap();
        // A crash in the middle of noting 12.
        let path = SentLog::path_for(&output);
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"1").unwrap();

        let again = SentLog::new(false);
        assert_eq!(again.open(&output, true).unwrap(), HashSet::from([3, 10]));
        again.hook().call(7).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "3\n10\n7\n");
        // A new run starts it empty.
        assert!(SentLog::new(false).open(&output, false).unwrap().is_empty());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }

    #[test]
    fn nothing_is_sent_before_the_log_is_open_or_beside_what_is_not_a_file() {
        assert!(SentLog::new(false).hook().call(1).unwrap_err().contains("not open"));
        let error = SentLog::new(false).open(Path::new("/dev/null"), false).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }
}

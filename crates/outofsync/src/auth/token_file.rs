//! [`RefreshTokenFile`]: the file that holds an OAuth2 refresh token, rewritten atomically when
//! the server rotates it.
//!
//! # Why a crash never loses the token
//!
//! A server that rotates refresh tokens answers a refresh with a new one and, sooner or later,
//! stops taking the old one. The new token is written to a temporary file beside this one, synced,
//! renamed over it and the directory synced, all before the access token that came with it is
//! used (the first use is what tells a careful server that the client has the new one). Killed at
//! any moment, the file holds either the old token, which the server still takes because the new
//! one was never used, or the new one, whole: never a torn file, never nothing.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file holding a refresh token, and the token it holds.
pub struct RefreshTokenFile {
    path: PathBuf,
    token: Mutex<String>,
}

impl RefreshTokenFile {
    /// Reads the refresh token in `path` (the whole file, surrounding whitespace trimmed).
    ///
    /// # Errors
    /// The file cannot be read, or holds no token.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot read the refresh token file {}: {e}", path.display()))
        })?;
        let token = text.trim();
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} should hold one refresh token, and holds {}", path.display(), describe(token)),
            ));
        }
        Ok(Self { token: Mutex::new(token.to_owned()), path })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The refresh token to present now.
    pub(crate) fn token(&self) -> String {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes `token` the file's (see the module documentation), then the one presented. Blocks
    /// on two syncs: call it off the event loop.
    pub(crate) fn store(&self, token: &str) -> io::Result<()> {
        let mut held = self.token.lock().unwrap_or_else(|e| e.into_inner());
        let name = self.path.file_name().ok_or_else(|| io::Error::other("the path names no file"))?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}.tmp", std::process::id()));
        let temp = self.path.with_file_name(temp_name);
        let written = (|| {
            let mut file = secret_file(&temp)?;
            file.write_all(token.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            std::fs::rename(&temp, &self.path)?;
            sync_dir(&self.path)
        })();
        if written.is_err() {
            _ = std::fs::remove_file(&temp);
        }
        written?;
        *held = token.to_owned();
        Ok(())
    }
}

/// A new file that only its owner can read: it holds a secret.
fn secret_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Makes the rename durable: the directory entry is on disk only once the directory is synced.
fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

fn describe(text: &str) -> String {
    if text.is_empty() { "nothing".into() } else { "several words".into() }
}

impl std::fmt::Debug for RefreshTokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshTokenFile").field("path", &self.path).finish_non_exhaustive()
    }
}

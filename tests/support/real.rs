//! Gating of the real-server tests on components installed outside Rust (nginx today, others
//! later): find them, and decide what a missing one means.
//!
//! On CI (`CI=true`) a missing component fails the test, so a broken image cannot turn the suite
//! green by skipping it. Elsewhere the test returns early, after one line on stderr naming what is
//! missing and how to install it; the line goes to the process's real stderr, not through the
//! test harness's capture (which hides the output of passing tests), once per component and run.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where system daemons live: `cargo test` often runs with a `PATH` that lacks the sbin
/// directories, where Debian puts nginx and redis-server.
const SBIN: &[&str] = &["/usr/sbin", "/usr/local/sbin", "/sbin"];

/// The path of the executable `name`, searched in `PATH` and then in the sbin directories; if it
/// is missing, fails on CI and otherwise says once that the tests needing it are skipped.
///
/// `install` is the command that installs it (`apt-get install nginx-light …`), shown to the user.
///
/// # Panics
/// When `name` is not found and `CI=true`.
pub fn require(name: &str, install: &str) -> Option<PathBuf> {
    require_quietly(name).or_else(|| missing(name, install))
}

/// The path of the executable `name`, like [`require`], but `None` without a word when it is
/// missing, on CI too: for tools a test uses when they are there and can do without.
pub fn require_quietly(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// `path` if that file exists (a loadable module, a data file); if not, fails on CI and otherwise
/// says once that what needs it is skipped or degraded. `what` names it for a human.
///
/// # Panics
/// When the file is missing and `CI=true`.
pub fn require_file(what: &str, path: &Path, install: &str) -> Option<PathBuf> {
    if path.is_file() {
        Some(path.to_owned())
    } else {
        missing(&format!("{what} ({})", path.display()), install)
    }
}

/// True when the tests run on CI, where nothing may be skipped.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn missing(what: &str, install: &str) -> Option<PathBuf> {
    assert!(!on_ci(), "real-server tests need {what}, which is not installed — {install}");
    // Many tests ask for the same component: one line per component and run is enough.
    static SAID: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if said.get_or_insert_default().insert(what.to_owned()) {
        _ = writeln!(std::io::stderr(), "real-server tests skipped: {what} not found — {install}");
    }
    None
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

//! The progress bar on stderr: done/total when known, rate, ok/failed, ETA.
//!
//! The hot path only bumps atomics ([`Counters`]); a thread of its own redraws ten times a second
//! from them, so the bar costs the fetch loop nothing however fast records come.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::stats::Counters;

const REDRAW: Duration = Duration::from_millis(100);

/// A live progress display; [`Progress::hidden`] draws nothing.
pub struct Progress {
    total: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts drawing `counters` on stderr.
    pub fn start(counters: Arc<Counters>) -> Progress {
        let total = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (total_seen, stopped) = (total.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("outofsync-progress".into())
            .spawn(move || draw(&counters, &total_seen, &stopped))
            .ok();
        Progress { total, stop, thread }
    }

    /// A progress display that draws nothing.
    pub fn hidden() -> Progress {
        Progress { total: Arc::default(), stop: Arc::new(AtomicBool::new(true)), thread: None }
    }

    /// Sets the number of records expected, once it is known.
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }

    /// A handle to set the total from elsewhere (a thread counting the input); 0 means unknown.
    pub fn total_handle(&self) -> Arc<AtomicU64> {
        self.total.clone()
    }

    /// Removes the bar.
    pub fn finish(mut self) {
        self.stop_drawing();
    }

    fn stop_drawing(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            _ = thread.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_drawing();
    }
}

fn draw(counters: &Counters, total: &AtomicU64, stop: &AtomicBool) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
    let known = ProgressStyle::with_template(
        "{spinner} {elapsed_precise} [{bar:30}] {human_pos}/{human_len} {per_sec:>10} ETA {eta:>4} {msg}",
    )
    .expect("a valid template")
    .progress_chars("=> ");
    let unknown =
        ProgressStyle::with_template("{spinner} {elapsed_precise} {human_pos} done {per_sec:>10} {msg}")
            .expect("a valid template");
    bar.set_style(unknown);
    let mut has_total = false;
    while !stop.load(Ordering::Relaxed) {
        let n = total.load(Ordering::Relaxed);
        if n > 0 && !has_total {
            bar.set_length(n);
            bar.set_style(known.clone());
            has_total = true;
        }
        bar.set_position(counters.done.load(Ordering::Relaxed));
        bar.set_message(format!(
            "ok {} failed {}",
            counters.ok.load(Ordering::Relaxed),
            counters.failed.load(Ordering::Relaxed)
        ));
        std::thread::park_timeout(REDRAW);
    }
    bar.finish_and_clear();
}

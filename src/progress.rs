//! The progress bar on stderr: done/total when known, rate, ok/failed, ETA, and the busiest
//! hosts whose controllers have something to say (learned window and rate, 429s, latency).
//!
//! The hot path only bumps atomics ([`Counters`]); a thread of its own redraws ten times a second
//! from them, so the bar costs the fetch loop nothing however fast records come.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use outofsync::engine::HostReport;
use outofsync::pipeline::Watch;
use outofsync::stats::Counters;

const REDRAW: Duration = Duration::from_millis(100);
/// Redraws between two looks at the hosts (each locks every host's controllers briefly).
const HOSTS_EVERY: u32 = 5;
/// Hosts shown on the line.
const HOSTS_SHOWN: usize = 3;

/// Where the bar reads the hosts from (the fetcher's `host_reports`).
pub type Hosts = Box<dyn Fn() -> Vec<HostReport> + Send>;

/// The bar, drawn on stderr by a thread of its own while a run goes (a [`Watch`] of it).
#[derive(Default)]
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    hosts: Option<Hosts>,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress").field("hosts", &self.hosts.is_some()).finish_non_exhaustive()
    }
}

impl Progress {
    /// Also shows the busiest hosts whose controllers have something to say.
    pub fn with_hosts(mut self, hosts: Hosts) -> Self {
        self.hosts = Some(hosts);
        self
    }
}

impl Watch for Progress {
    fn start(&mut self, counters: Arc<Counters>, total: Arc<AtomicU64>) {
        let stopped = self.stop.clone();
        let hosts = self.hosts.take();
        self.thread = std::thread::Builder::new()
            .name("outofsync-progress".into())
            .spawn(move || draw(&counters, &total, &stopped, hosts.as_ref()))
            .ok();
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            _ = thread.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The bar's two looks: with a total (a bar and an ETA), and without one (yet).
fn styles() -> (ProgressStyle, ProgressStyle) {
    let known = ProgressStyle::with_template(
        "{spinner} {elapsed_precise} [{bar:30}] {human_pos}/{human_len} {rate:>10} ETA {eta:>4} {msg}",
    )
    .expect("a valid template")
    .progress_chars("=> ")
    .with_key("rate", rate);
    let unknown =
        ProgressStyle::with_template("{spinner} {elapsed_precise} {human_pos} done {rate:>10} {msg}")
            .expect("a valid template")
            .with_key("rate", rate);
    (known, unknown)
}

/// The `{rate}` of the templates. indicatif's own `{per_sec}` writes the rate with its
/// fraction (`6,167.0418/s`), which nobody reads and which makes the bar jitter.
fn rate(state: &ProgressState, out: &mut dyn fmt::Write) {
    _ = out.write_str(&per_second(state.per_sec()));
}

/// A rate as a whole number of records per second, with thousands separated: `6,167/s`.
fn per_second(rate: f64) -> String {
    let whole = if rate.is_finite() && rate > 0.0 { rate.round() as u64 } else { 0 };
    format!("{}/s", HumanCount(whole))
}

/// The busiest hosts worth a word, as the bar shows them.
fn busiest(mut hosts: Vec<HostReport>) -> String {
    hosts.retain(HostReport::is_notable);
    hosts.sort_by_key(|h| std::cmp::Reverse(h.attempts));
    hosts.iter().take(HOSTS_SHOWN).map(|h| format!("  | {}", h.brief())).collect()
}

fn draw(counters: &Counters, total: &AtomicU64, stop: &AtomicBool, hosts: Option<&Hosts>) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
    let (known, unknown) = styles();
    bar.set_style(unknown);
    let mut has_total = false;
    let (mut hosts_line, mut redraws) = (String::new(), 0u32);
    while !stop.load(Ordering::Relaxed) {
        if let Some(hosts) = hosts
            && redraws % HOSTS_EVERY == 0
        {
            hosts_line = busiest(hosts());
        }
        redraws = redraws.wrapping_add(1);
        let n = total.load(Ordering::Relaxed);
        if n > 0 && !has_total {
            bar.set_length(n);
            bar.set_style(known.clone());
            has_total = true;
        }
        bar.set_position(counters.done.load(Ordering::Relaxed));
        bar.set_message(format!(
            "ok {} failed {}{hosts_line}",
            counters.ok.load(Ordering::Relaxed),
            counters.failed.load(Ordering::Relaxed)
        ));
        std::thread::park_timeout(REDRAW);
    }
    bar.finish_and_clear();
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use indicatif::TermLike;

    use super::*;

    /// A terminal that keeps everything drawn on it.
    #[derive(Clone, Debug, Default)]
    struct Screen(Arc<Mutex<String>>);

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            200
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_rate_is_a_whole_number_of_records_per_second() {
        assert_eq!(per_second(6_167.041_845_832_9), "6,167/s");
        assert_eq!(per_second(0.4), "0/s");
        assert_eq!(per_second(f64::NAN), "0/s");
        for (style, length) in [(styles().0, Some(1_000_000)), (styles().1, None)] {
            let screen = Screen::default();
            let target = ProgressDrawTarget::term_like(Box::new(screen.clone()));
            let bar = ProgressBar::with_draw_target(length, target).with_style(style);
            // Steps a few milliseconds apart, so that the rate has a fraction to show.
            for n in 1..=5 {
                std::thread::sleep(std::time::Duration::from_millis(3));
                bar.set_position(n * 777);
            }
            bar.tick();
            let drawn = screen.0.lock().unwrap().clone();
            let rate = drawn.split_whitespace().rfind(|w| w.ends_with("/s"));
            let rate = rate.unwrap_or_else(|| panic!("no rate in {drawn:?}"));
            assert!(rate.trim_end_matches("/s").chars().all(|c| c.is_ascii_digit() || c == ','), "{drawn}");
        }
    }
}

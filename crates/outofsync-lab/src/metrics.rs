//! Measuring this process from the inside (Linux): CPU time and context switches (`getrusage`),
//! memory and threads (`/proc/self/status`), open files (`/proc/self/fd`), and a [`Sampler`] for
//! the peaks that the kernel does not keep.
//!
//! Peak memory is the kernel's own high-water mark, `VmHWM`, reset at the start of the measured
//! phase by writing `5` to `/proc/self/clear_refs`. The peak thread and file-descriptor counts are
//! sampled, by a thread whose own CPU time and context switches are then taken out of the totals.
//!
//! What these numbers leave out, by construction: memory the kernel holds for the process (each
//! thread's kernel stack and task structure, socket buffers) is not in `VmRSS`.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// CPU time and context switches, of the process or of one thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// CPU time in user mode, in seconds.
    pub user_s: f64,
    /// CPU time in the kernel, in seconds.
    pub system_s: f64,
    /// Context switches because a thread waited (I/O, a lock, a sleep).
    pub voluntary_switches: u64,
    /// Context switches because the scheduler took the CPU away (time slice over, preempted).
    pub involuntary_switches: u64,
}

impl Usage {
    /// The whole process so far: every thread, including those that have ended.
    pub fn process() -> Self {
        Self::of(libc::RUSAGE_SELF)
    }

    /// The calling thread so far.
    pub fn thread() -> Self {
        Self::of(libc::RUSAGE_THREAD)
    }

    fn of(who: libc::c_int) -> Self {
        // SAFETY: `getrusage` only writes into the zeroed struct we pass; `who` is a valid selector.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(who, &mut usage);
            usage
        };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Self {
            user_s: secs(usage.ru_utime),
            system_s: secs(usage.ru_stime),
            voluntary_switches: usage.ru_nvcsw as u64,
            involuntary_switches: usage.ru_nivcsw as u64,
        }
    }

    /// What happened between `earlier` and `self`.
    #[must_use]
    pub fn minus(self, earlier: Usage) -> Usage {
        Usage {
            user_s: (self.user_s - earlier.user_s).max(0.0),
            system_s: (self.system_s - earlier.system_s).max(0.0),
            voluntary_switches: self.voluntary_switches.saturating_sub(earlier.voluntary_switches),
            involuntary_switches: self.involuntary_switches.saturating_sub(earlier.involuntary_switches),
        }
    }
}

/// Memory and threads of this process, from `/proc/self/status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Resident memory now, in bytes (`VmRSS`).
    pub rss: u64,
    /// The most resident memory since the start or the last [`reset_peak_rss`], in bytes (`VmHWM`).
    pub peak_rss: u64,
    /// OS threads now (`Threads`).
    pub threads: u64,
}

impl Status {
    /// Reads `/proc/self/status`.
    ///
    /// # Errors
    /// The file cannot be read (not Linux, or no `/proc`).
    pub fn read() -> io::Result<Self> {
        Ok(Self::parse(&std::fs::read_to_string("/proc/self/status")?))
    }

    fn parse(text: &str) -> Self {
        let mut status = Status::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else { continue };
            let number = || value.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
            match key {
                "VmRSS" => status.rss = number() * 1024,
                "VmHWM" => status.peak_rss = number() * 1024,
                "Threads" => status.threads = number(),
                _ => {}
            }
        }
        status
    }
}

/// Resets the peak resident memory (`VmHWM`) to the current resident memory.
///
/// # Errors
/// `/proc/self/clear_refs` cannot be written (a kernel without it, or a locked-down `/proc`).
pub fn reset_peak_rss() -> io::Result<()> {
    std::fs::write("/proc/self/clear_refs", b"5")
}

/// How many file descriptors this process has open.
///
/// # Errors
/// `/proc/self/fd` cannot be read.
pub fn open_fds() -> io::Result<u64> {
    // The directory handle that reads the list is itself one of the entries.
    Ok(std::fs::read_dir("/proc/self/fd")?.count().saturating_sub(1) as u64)
}

/// The soft and hard limits on open files (`RLIMIT_NOFILE`).
pub fn open_files_limit() -> (u64, u64) {
    // SAFETY: `getrlimit` only writes into the struct we pass.
    let limit = unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit
    };
    (limit.rlim_cur as u64, limit.rlim_max as u64)
}

/// The peaks a [`Sampler`] saw, and what sampling cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Peaks {
    /// The most OS threads at once, the sampler's own thread not counted.
    pub threads: u64,
    /// The most open file descriptors at once.
    pub fds: u64,
    /// The sampler thread's own CPU time and context switches, to take out of the process's.
    pub cost: Usage,
}

/// A thread that samples the thread count every tick and the open descriptors every
/// [`Sampler::FD_EVERY`] ticks (every tick while few are open), until [`Sampler::finish`].
///
/// Counting descriptors reads a directory with one entry per socket (10,000 at the top of the
/// sweep), so it is done less often than the nearly free thread count; connections live for the
/// whole run in every engine (they are pooled), so the coarser sampling still sees their peak.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Peaks>,
}

impl Sampler {
    /// Descriptors are counted once every this many ticks…
    pub const FD_EVERY: u32 = 10;
    /// …but every tick while fewer than this many are open: then counting is cheap, and a short
    /// run, whose connections may not all live at once (a retry's new connection), is not
    /// under-read (a peak between two coarse samples made the lab's quick test flaky).
    pub const FEW_FDS: u64 = 1_000;

    /// Starts sampling every `tick`.
    ///
    /// # Errors
    /// The sampler thread cannot be started.
    pub fn start(tick: Duration) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread =
            thread::Builder::new().name("lab-sampler".into()).stack_size(64 * 1024).spawn(move || {
                // Counted from here: the thread's start-up happened before the measured phase.
                let born = Usage::thread();
                let mut peaks = Peaks::default();
                let mut n = 0u32;
                let mut last_fds = 0u64;
                // One last sample after the stop flag, so the state at the end counts too.
                loop {
                    let stopping = flag.load(Ordering::Acquire);
                    if let Ok(status) = Status::read() {
                        peaks.threads = peaks.threads.max(status.threads.saturating_sub(1));
                    }
                    if (n.is_multiple_of(Self::FD_EVERY) || stopping || last_fds < Self::FEW_FDS)
                        && let Ok(fds) = open_fds()
                    {
                        last_fds = fds;
                        peaks.fds = peaks.fds.max(fds);
                    }
                    if stopping {
                        break;
                    }
                    n = n.wrapping_add(1);
                    thread::park_timeout(tick);
                }
                peaks.cost = Usage::thread().minus(born);
                peaks
            })?;
        Ok(Self { stop, thread })
    }

    /// Stops sampling and returns the peaks.
    pub fn finish(self) -> Peaks {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        self.thread.join().expect("the sampler does not panic")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_parsed_in_bytes() {
        let status = Status::parse("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t7\n");
        assert_eq!(status, Status { rss: 1 << 20, peak_rss: 2 << 20, threads: 7 });
    }

    #[test]
    fn the_sampler_sees_a_thread_that_came_and_went() {
        let sampler = Sampler::start(Duration::from_millis(1)).unwrap();
        let extra: Vec<_> =
            (0..3).map(|_| thread::spawn(|| thread::sleep(Duration::from_millis(50)))).collect();
        extra.into_iter().for_each(|t| t.join().unwrap());
        let peaks = sampler.finish();
        // This thread and the three; the harness runs other tests on other threads, so no more is certain.
        assert!(peaks.threads >= 4, "{peaks:?}");
        assert!(peaks.fds >= 3, "stdin, stdout and stderr at least: {peaks:?}");
    }
}

//! The note's table, row by row, with what a run measured beside each claim.
//!
//! Where a row can be measured, the evidence is numbers from the report; where it cannot
//! (complexity, control flow), it says what this codebase shows instead, and says so. Both the
//! terminal report and the HTML page print these rows.

use std::fmt::Write as _;

use super::engines::{self, EngineKind};
use super::workload::WorkloadKind;
use super::{CellResult, LabReport};

/// One row of the note's table and the evidence beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The feature, as the note names it.
    pub feature: &'static str,
    /// What the note says of async programming.
    pub note_async: &'static str,
    /// What the note says of multithreading.
    pub note_threads: &'static str,
    /// What this run measured (or, for rows that cannot be measured, what the code shows).
    pub evidence: String,
    /// What the evidence says about the claim, in one sentence.
    pub verdict: String,
}

/// The seven rows of the note's table, with evidence from `report`.
pub fn rows(report: &LabReport) -> Vec<Row> {
    let facts = Facts::of(report);
    vec![
        execution_model(&facts),
        overhead(&facts),
        use_cases(&facts),
        complexity(),
        control_flow(report),
        resources(&facts),
        errors(&facts),
    ]
}

/// The cells the rows quote: the `io` cell with the most in flight, the `cpu` and `mixed` cells.
struct Facts<'a> {
    engines: Vec<EngineKind>,
    io: Vec<&'a CellResult>,
    cpu: Vec<&'a CellResult>,
    mixed: Vec<&'a CellResult>,
    delay_ms: u64,
    cores: usize,
}

impl<'a> Facts<'a> {
    fn of(report: &'a LabReport) -> Self {
        let top = report
            .cells
            .iter()
            .filter(|c| c.measurement.workload == WorkloadKind::Io)
            .map(|c| c.measurement.concurrency)
            .max();
        let pick = |workload: WorkloadKind, concurrency: Option<usize>| -> Vec<&'a CellResult> {
            report
                .cells
                .iter()
                .filter(|c| {
                    c.measurement.workload == workload
                        && concurrency.is_none_or(|n| c.measurement.concurrency == n)
                })
                .collect()
        };
        Facts {
            engines: report.engines(),
            io: pick(WorkloadKind::Io, top),
            cpu: pick(WorkloadKind::Cpu, None),
            mixed: pick(WorkloadKind::Mixed, None),
            delay_ms: report.plan.io_delay_ms,
            cores: report.machine.cores,
        }
    }

    /// `async-1 1 · threads 1,001 · …` for every engine measured in `cells`.
    fn each(&self, cells: &[&CellResult], value: impl Fn(&CellResult) -> String) -> String {
        let parts: Vec<String> = self
            .engines
            .iter()
            .filter_map(|&e| cell(cells, e).map(|c| format!("{} {}", e.name(), value(c))))
            .collect();
        parts.join(" · ")
    }

    fn io_concurrency(&self) -> usize {
        self.io.first().map_or(0, |c| c.measurement.concurrency)
    }
}

/// The cell of `engine` among `cells`.
fn cell<'c>(cells: &[&'c CellResult], engine: EngineKind) -> Option<&'c CellResult> {
    cells.iter().copied().find(|c| c.measurement.engine == engine)
}

/// `value` of engine `a` over that of `b` in `cells`, if both ran.
fn ratio(
    cells: &[&CellResult],
    a: EngineKind,
    b: EngineKind,
    value: impl Fn(&CellResult) -> f64,
) -> Option<f64> {
    let (x, y) = (value(cell(cells, a)?), value(cell(cells, b)?));
    (y > 0.0).then_some(x / y)
}

fn execution_model(f: &Facts) -> Row {
    let evidence = if f.io.is_empty() {
        "not measured: the run had no io cell".to_owned()
    } else {
        format!(
            "OS threads at {} requests in flight (io): {}.",
            count(f.io_concurrency() as f64),
            f.each(&f.io, |c| count(c.measurement.threads as f64))
        )
    };
    let mut verdict = String::new();
    if let Some(one) = cell(&f.io, EngineKind::Async1) {
        let threads = one.measurement.threads;
        _ = write!(
            verdict,
            "async-1 kept {} requests in flight on {} thread{}. ",
            count(one.measurement.totals.in_flight as f64),
            count(threads as f64),
            if threads == 1 { "" } else { "s" }
        );
    }
    if let Some(t) = cell(&f.io, EngineKind::Threads) {
        _ = write!(
            verdict,
            "threads needed {} threads for {} in flight. ",
            count(t.measurement.threads as f64),
            count(t.measurement.totals.in_flight as f64)
        );
    }
    verdict.push_str(
        "async-n is async on a thread per core: single-threaded is a choice of runtime, not a \
                      property of async.",
    );
    Row {
        feature: "Execution model",
        note_async: "Single-threaded event loop",
        note_threads: "Multiple threads running concurrently",
        evidence,
        verdict,
    }
}

fn overhead(f: &Facts) -> Row {
    let per_request = |c: &CellResult| c.measurement.totals.records.max(1) as f64;
    let mut evidence = String::new();
    if !f.io.is_empty() {
        _ = write!(
            evidence,
            "At {} in flight (io): memory per request in flight {}. CPU per request {}. \
             Context switches per request {}.",
            count(f.io_concurrency() as f64),
            f.each(&f.io, |c| bytes(c.rss_per_in_flight)),
            f.each(&f.io, |c| micros(
                (c.measurement.usage.user_s + c.measurement.usage.system_s) / per_request(c)
            )),
            f.each(&f.io, |c| {
                let u = &c.measurement.usage;
                decimal((u.voluntary_switches + u.involuntary_switches) as f64 / per_request(c))
            }),
        );
    }
    let memory = ratio(&f.io, EngineKind::Threads, EngineKind::Async1, |c| c.rss_per_in_flight);
    let cpu = ratio(&f.io, EngineKind::Threads, EngineKind::Async1, |c| {
        (c.measurement.usage.user_s + c.measurement.usage.system_s) / per_request(c)
    });
    let verdict = match (memory, cpu) {
        (Some(m), Some(c)) => format!(
            "A thread per request costs {} the memory and {} the CPU time of an event loop per request in \
             flight here{}.",
            times(m),
            times(c),
            if m > 1.0 && c > 1.0 { ": the claim holds" } else { ": the claim does not hold on this run" }
        ),
        _ => "Not compared: the run lacks async-1 or threads on io.".into(),
    };
    Row {
        feature: "Overhead",
        note_async: "Lower overhead, lightweight",
        note_threads: "Higher overhead due to context switching",
        evidence: if evidence.is_empty() { "not measured: the run had no io cell".into() } else { evidence },
        verdict,
    }
}

fn use_cases(f: &Facts) -> Row {
    let mut evidence = String::new();
    if !f.io.is_empty() {
        let ideal = f.io_concurrency() as f64 * 1000.0 / f.delay_ms.max(1) as f64;
        _ = write!(
            evidence,
            "I/O-bound, {} in flight on a {} ms endpoint (at most {} req/s): {}. ",
            count(f.io_concurrency() as f64),
            f.delay_ms,
            count(ideal),
            f.each(&f.io, |c| format!("{} req/s", count(c.measurement.throughput)))
        );
    }
    if !f.cpu.is_empty() {
        _ = write!(
            evidence,
            "CPU-bound ({} cores): {}; cores kept busy {}.",
            f.cores,
            f.each(&f.cpu, |c| format!("{} req/s", count(c.measurement.throughput))),
            f.each(&f.cpu, |c| format!("{:.2}", cores_used(c)))
        );
    }
    let mut verdict = String::new();
    if let (Some(one), Some(threads)) = (cell(&f.io, EngineKind::Async1), cell(&f.io, EngineKind::Threads)) {
        _ = write!(
            verdict,
            "On I/O, one event loop on one thread did {} of the requests of a thread per request (on {} threads)",
            percent(one.measurement.throughput / threads.measurement.throughput.max(1e-9)),
            count(threads.measurement.threads as f64)
        );
        match ratio(&f.io, EngineKind::Async1, EngineKind::Pool, |c| c.measurement.throughput) {
            Some(r) => _ = write!(verdict, ", and {} those of the fixed pool. ", times(r)),
            None => verdict.push_str(". "),
        }
    }
    let threaded = [EngineKind::Pool, EngineKind::Threads].into_iter().filter_map(|e| cell(&f.cpu, e));
    let best = threaded.max_by(|a, b| a.measurement.throughput.total_cmp(&b.measurement.throughput));
    if let (Some(one), Some(best)) = (cell(&f.cpu, EngineKind::Async1), best) {
        let share = one.measurement.throughput / best.measurement.throughput.max(1e-9);
        _ = write!(
            verdict,
            "On CPU work one event loop did {} of the work of {} ({:.2} cores busy against {:.2}).",
            percent(share),
            best.measurement.engine.name(),
            cores_used(one),
            cores_used(best)
        );
        if let Some(h) = cell(&f.cpu, EngineKind::Hybrid) {
            _ = write!(
                verdict,
                " hybrid, async I/O with a CPU pool, did {}.",
                percent(h.measurement.throughput / best.measurement.throughput.max(1e-9))
            );
        }
        if cores_used(best) < 1.2 {
            verdict.push_str(
                " The threads did not get a second core either (other load on the machine), so this run does not \
                 test the claim.",
            );
        } else {
            verdict.push_str(
                " A single event loop computes on one core; CPU work wants cores, however it gets them.",
            );
        }
    }
    Row {
        feature: "Use cases",
        note_async: "Best for I/O-bound tasks (e.g., network requests)",
        note_threads: "Best for CPU-bound tasks (e.g., heavy computations)",
        evidence: if evidence.is_empty() { "not measured".into() } else { evidence.trim_end().to_owned() },
        verdict: if verdict.is_empty() {
            "Not compared on this run.".into()
        } else {
            verdict.trim_end().to_owned()
        },
    }
}

fn complexity() -> Row {
    let size = |e: EngineKind| format!("{} {}", e.name(), engines::code_lines(e.source()));
    let shared: Vec<String> = engines::SHARED_SOURCES
        .iter()
        .map(|(file, src)| format!("{file} {}", engines::code_lines(src)))
        .collect();
    Row {
        feature: "Complexity",
        note_async: "Simpler to reason about, avoids callback hell",
        note_threads: "More complex due to synchronization issues",
        evidence: format!(
            "Not measurable. Lines of code of each engine in this lab: {}; shared by them: {}.",
            EngineKind::ALL.map(size).join(" · "),
            shared.join(" · ")
        ),
        verdict: "Neither model needs callbacks in Rust: async/await reads like the blocking code. The \
                  thread engines' synchronisation (a token channel, an atomic counter, a locked tally) is a \
                  few lines, and the compiler checks it."
            .into(),
    }
}

fn control_flow(report: &LabReport) -> Row {
    // Cells that ran the same requests: same workload and concurrency.
    let mut groups: Vec<(WorkloadKind, usize)> =
        report.cells.iter().map(|c| (c.measurement.workload, c.measurement.concurrency)).collect();
    groups.sort();
    groups.dedup();
    let agreeing = groups
        .iter()
        .filter(|&&(w, n)| {
            let cells: Vec<&CellResult> = report
                .cells
                .iter()
                .filter(|c| c.measurement.workload == w && c.measurement.concurrency == n)
                .collect();
            cells.windows(2).all(|p| {
                let (a, b) = (&p[0].measurement.totals, &p[1].measurement.totals);
                a.records == b.records
                    && a.records_digest == b.records_digest
                    && a.work_digest == b.work_digest
            })
        })
        .count();
    Row {
        feature: "Control flow",
        note_async: "Uses async and await for non-blocking execution",
        note_threads: "Threads run independently, can lead to race conditions",
        evidence: format!(
            "Not measurable as such. Every engine shares one client and one tally between all of its threads \
             or tasks; the records and the work they produced matched, digest for digest, across engines in \
             {agreeing} of {} comparisons: no update lost or doubled.",
            groups.len()
        ),
        verdict:
            "Races come from shared mutable state, not from threads: async-n's tasks run in parallel too. \
                  Rust's Send and Sync rules refuse unsynchronised sharing at compile time in both models (a \
                  tally in a RefCell does not compile once a second thread can reach it)."
                .into(),
    }
}

fn resources(f: &Facts) -> Row {
    let evidence = if f.io.is_empty() {
        "not measured: the run had no io cell".to_owned()
    } else {
        format!(
            "At {} in flight (io): peak memory {}; open descriptors {}; requests the server saw in flight at once \
             {}.",
            count(f.io_concurrency() as f64),
            f.each(&f.io, |c| bytes(c.measurement.rss_peak as f64)),
            f.each(&f.io, |c| count(c.measurement.fds as f64)),
            f.each(&f.io, |c| count(c.server_in_flight as f64)),
        )
    };
    Row {
        feature: "Resource management",
        note_async: "Efficient resource usage, can handle many tasks with fewer resources",
        note_threads: "Requires careful management of shared resources",
        evidence,
        verdict: resources_verdict(f),
    }
}

fn resources_verdict(f: &Facts) -> String {
    let mut verdict =
        "Every model holds a socket per request in flight (the descriptors above); what differs is what \
                       waits on it: a task, or a thread with its stack."
            .to_owned();
    if let (Some(one), Some(threads)) = (cell(&f.io, EngineKind::Async1), cell(&f.io, EngineKind::Threads)) {
        _ = write!(
            verdict,
            " Here a request in flight cost {} of memory on a thread against {} in the event loop (the kernel's own \
             stack per thread, not counted in RSS, comes on top), and the threads got {} of their {} requests to the \
             server at once.",
            bytes(threads.rss_per_in_flight),
            bytes(one.rss_per_in_flight),
            count(threads.server_in_flight as f64),
            count(threads.measurement.totals.in_flight as f64)
        );
    }
    if f.engines.contains(&EngineKind::Pool) {
        verdict.push_str(" A fixed pool caps the requests in flight at its size.");
    }
    verdict
}

fn errors(f: &Facts) -> Row {
    let failures = |c: &CellResult| {
        let t = &c.measurement.totals;
        let kinds: Vec<String> = t.failures.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!(
            "{} records, {}",
            count(t.records as f64),
            if kinds.is_empty() { "no failures".into() } else { kinds.join(", ") }
        )
    };
    let evidence = if f.mixed.is_empty() {
        "not measured: the run had no mixed cell".to_owned()
    } else {
        format!("Mixed workload (1 request in 100 is a 503): {}.", f.each(&f.mixed, failures))
    };
    Row {
        feature: "Error handling",
        note_async: "Errors can be caught using try/catch in async functions",
        note_threads: "Requires careful handling to avoid crashes due to thread issues",
        evidence,
        verdict: "In both models a failure is a value (a Result, then a record), handled where it happens; a \
                  panic ends only its thread or task and reaches whoever joins it — the lab re-raises it as a \
                  bug instead of losing a record."
            .into(),
    }
}

/// CPU time over wall time: how many cores the engine kept busy.
fn cores_used(c: &CellResult) -> f64 {
    let u = &c.measurement.usage;
    (u.user_s + u.system_s) / c.measurement.elapsed_s.max(1e-9)
}

/// `12,345`.
pub fn count(n: f64) -> String {
    let n = n.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// `12.3 KiB`.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let (mut value, mut unit) = (n.max(0.0), 0);
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{value:.0} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// `41 µs`, from seconds.
pub fn micros(seconds: f64) -> String {
    let us = seconds * 1e6;
    if us >= 100.0 { format!("{us:.0} µs") } else { format!("{us:.1} µs") }
}

/// `2.4`.
pub fn decimal(x: f64) -> String {
    if x >= 100.0 { count(x) } else { format!("{x:.1}") }
}

/// `3.2×`.
fn times(x: f64) -> String {
    format!("{x:.1}×")
}

/// `48%`.
fn percent(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_a_person_wrote_them() {
        assert_eq!(count(1234567.4), "1,234,567");
        assert_eq!(count(999.0), "999");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(micros(0.000_041_2), "41.2 µs");
        assert_eq!(decimal(2.44), "2.4");
    }
}

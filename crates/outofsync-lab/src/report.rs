//! The terminal report of a lab run: the note's table with the evidence beside each row, then
//! every measurement, one table per workload.

use std::fmt::Write as _;

use super::evidence::{self, bytes, count, decimal};
use super::workload::WorkloadKind;
use super::{CellResult, LabReport};

/// Width of the report's text, in characters (the tables of numbers are as wide as they need).
const WIDTH: usize = 118;

/// The whole report, as printed by `outofsync lab`.
pub fn render(report: &LabReport) -> String {
    let mut out = String::new();
    header(&mut out, report);
    claims(&mut out, report);
    for workload in WorkloadKind::ALL {
        let cells: Vec<&CellResult> =
            report.cells.iter().filter(|c| c.measurement.workload == workload).collect();
        if !cells.is_empty() {
            measurements(&mut out, report, workload, &cells);
        }
    }
    out
}

/// One line saying what was measured, where, and how the comparison was kept fair.
pub fn fairness(report: &LabReport) -> String {
    let plan = &report.plan;
    format!(
        "Same server process, same requests, HTTP/1.1 only, IP-literal URLs (no resolver), retries as `fetch` has them (waits of 10–100 ms), \
         no compression, pooled keep-alive connections, the same allocator (the system's) and a {} stack for \
         every thread. async-n has {} workers and hybrid {} CPU threads (one per core); pool has {} threads.",
        bytes(plan.stack_size as f64),
        plan.cpu_threads,
        plan.cpu_threads,
        plan.pool_size
    )
}

/// The conditions of the run: the machine's load, the server's priority, the open-file limit.
pub fn conditions(report: &LabReport) -> String {
    let m = &report.machine;
    let mut text = format!(
        "Load average {:.1} before the run, {:.1} after (other work on the machine competes for the cores). ",
        m.load_before[0], m.load_after[0]
    );
    _ = write!(
        text,
        "Server processes at nice {}. ",
        m.server_nice.map_or_else(|| "unknown".to_owned(), |n| n.to_string())
    );
    if let Some(limit) = report.cells.first().map(|c| c.measurement.open_files_limit) {
        _ = write!(text, "Open-file limit of the workers: {}.", count(limit as f64));
    }
    text
}

/// The `io` points an engine skipped by design, and why.
pub fn not_run(report: &LabReport) -> Vec<String> {
    let plan = &report.plan;
    let mut notes = Vec::new();
    if !plan.workloads.contains(&WorkloadKind::Io) {
        return notes;
    }
    for &n in &plan.io_concurrency {
        for &engine in plan.engines.iter().filter(|&&e| !plan.runs(e, WorkloadKind::Io, n)) {
            let requests = (n as u64 * plan.io_rounds).max(plan.io_min_requests);
            let minutes = requests as f64 / plan.pool_size as f64 * plan.io_delay_ms as f64 / 60_000.0;
            notes.push(format!(
                "{} did not run at {} in flight: with {} threads it keeps {} requests in flight, so the same {} \
                 requests would take {:.0} minutes.",
                engine.name(),
                count(n as f64),
                plan.pool_size,
                plan.pool_size,
                count(requests as f64),
                minutes
            ));
        }
    }
    notes
}

/// What each workload sends and does.
pub fn describe(report: &LabReport, workload: WorkloadKind) -> String {
    let p = report.plan.params(workload);
    match workload {
        WorkloadKind::Io => format!("GET /delay/{} (a tiny body), no work", p.delay_ms),
        WorkloadKind::Cpu => format!(
            "GET /json?size={} (a {} document), parsed into a tree, reshaped, re-serialised, hashed {} times",
            p.doc_bytes,
            bytes(p.doc_bytes as f64),
            p.hash_rounds
        ),
        WorkloadKind::Mixed => format!(
            "GET /delay/{} and the cpu request alternating, {} in flight; 1 in 100 is GET /status/503",
            p.delay_ms, report.plan.mixed_concurrency
        ),
    }
}

fn header(out: &mut String, report: &LabReport) {
    let m = &report.machine;
    let seconds: f64 = report.cells.iter().map(|c| c.measurement.elapsed_s).sum();
    _ = writeln!(
        out,
        "outofsync lab: {} cells on {} cores (Linux {}, {}), {:.0} s measured",
        report.cells.len(),
        m.cores,
        m.kernel,
        if m.optimized { "release build" } else { "debug build: numbers not representative" },
        seconds
    );
    _ = writeln!(out, "{}", conditions(report));
    for line in wrap(&fairness(report), WIDTH) {
        _ = writeln!(out, "{line}");
    }
    out.push('\n');
}

fn claims(out: &mut String, report: &LabReport) {
    _ = writeln!(out, "The note's table, measured");
    let widths = [19, 34, WIDTH - 19 - 34 - 10];
    let rule = |out: &mut String| {
        let cells: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
        _ = writeln!(out, "+{}+", cells.join("+"));
    };
    rule(out);
    table_row(out, &widths, &["Feature", "The note says", "Measured here"]);
    rule(out);
    for row in evidence::rows(report) {
        let note = format!("async: {}\nthreads: {}", row.note_async, row.note_threads);
        let measured = format!("{}\n→ {}", row.evidence, row.verdict);
        table_row(out, &widths, &[row.feature, &note, &measured]);
        rule(out);
    }
    out.push('\n');
}

/// A row of wrapped cells, side by side.
fn table_row(out: &mut String, widths: &[usize], cells: &[&str]) {
    let wrapped: Vec<Vec<String>> = cells.iter().zip(widths).map(|(c, &w)| wrap(c, w)).collect();
    let height = wrapped.iter().map(Vec::len).max().unwrap_or(0);
    for line in 0..height {
        out.push('|');
        for (cell, &w) in wrapped.iter().zip(widths) {
            let text = cell.get(line).map_or("", String::as_str);
            _ = write!(out, " {text}{} |", " ".repeat(w.saturating_sub(text.chars().count())));
        }
        out.push('\n');
    }
}

fn measurements(out: &mut String, report: &LabReport, workload: WorkloadKind, cells: &[&CellResult]) {
    _ = writeln!(out, "{}: {}", workload.name(), describe(report, workload));
    let head = [
        "asked",
        "engine",
        "in flight",
        "at server",
        "req/s",
        "p50 ms",
        "p99 ms",
        "peak RSS",
        "RSS/flight",
        "user s",
        "sys s",
        "vol cs",
        "invol cs",
        "threads",
        "fds",
        "ok/records",
    ];
    let rows: Vec<[String; 16]> = cells.iter().map(|c| cells_of(c)).collect();
    let points: Vec<usize> = cells.iter().map(|c| c.measurement.concurrency).collect();
    let widths: Vec<usize> = (0..head.len())
        .map(|k| rows.iter().map(|r| r[k].chars().count()).chain([head[k].len()]).max().unwrap_or(0))
        .collect();
    let line = |out: &mut String, fields: &[&str]| {
        let padded: Vec<String> = fields
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(k, (f, &w))| {
                let pad = " ".repeat(w.saturating_sub(f.chars().count()));
                // The engine's name reads better on the left; numbers line up on the right.
                if k == 1 { format!("{f}{pad}") } else { format!("{pad}{f}") }
            })
            .collect();
        _ = writeln!(out, "  {}", padded.join("  "));
    };
    line(out, &head);
    for (k, row) in rows.iter().enumerate() {
        // A blank line between points of the sweep.
        if k > 0 && points[k] != points[k - 1] {
            out.push('\n');
        }
        let fields: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &fields);
    }
    if workload == WorkloadKind::Io {
        for note in not_run(report) {
            _ = writeln!(out, "  ({note})");
        }
    }
    out.push('\n');
}

fn cells_of(c: &CellResult) -> [String; 16] {
    let m = &c.measurement;
    [
        count(m.concurrency as f64),
        m.engine.name().to_owned(),
        count(m.totals.in_flight as f64),
        // What the server saw says something only where the server is the slow side.
        if m.workload == WorkloadKind::Io { count(c.server_in_flight as f64) } else { "-".into() },
        count(m.throughput),
        decimal(m.totals.latency_ms.p50),
        decimal(m.totals.latency_ms.p99),
        bytes(m.rss_peak as f64),
        bytes(c.rss_per_in_flight),
        format!("{:.2}", m.usage.user_s),
        format!("{:.2}", m.usage.system_s),
        count(m.usage.voluntary_switches as f64),
        count(m.usage.involuntary_switches as f64),
        count(m.threads as f64),
        count(m.fds as f64),
        format!("{}/{}", count(m.totals.ok as f64), count(m.totals.records as f64)),
    ]
}

/// Splits `text` into lines of at most `width` characters, at spaces; `\n` starts a new line.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let len = line.chars().count();
            if len > 0 && len + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_and_keeps_paragraphs() {
        assert_eq!(wrap("one two three four", 9), ["one two", "three", "four"]);
        assert_eq!(wrap("a\nb c", 10), ["a", "b c"]);
    }
}

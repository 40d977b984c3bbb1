//! `outofsync lab` (the runs, the report, the files) and `outofsync lab-worker` (one cell).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use outofsync_lab::{self as lab, CellResult, LabConfig, LabReport, Plan, evidence};

use crate::cli::{LabArgs, LabWorkerArgs};

pub fn run(args: LabArgs) -> anyhow::Result<ExitCode> {
    let report = match &args.from {
        Some(path) => {
            let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_slice(&text)
                .with_context(|| format!("{} is not the --json of a lab run", path.display()))?
        }
        None => measure(&args)?,
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(lab::report::render(&report).as_bytes())?;
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).expect("a report serialises");
        std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, lab::html::render(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the plan the flags ask for, with a line on stderr per cell.
fn measure(args: &LabArgs) -> anyhow::Result<LabReport> {
    let config = LabConfig {
        exe: std::env::current_exe().context("cannot find the outofsync binary to start workers from")?,
        plan: plan(args)?,
    };
    if cfg!(debug_assertions) {
        eprintln!(
            "outofsync lab: this is a debug build; build with --release for numbers that mean something"
        );
    }
    let cells = config.plan.cells("").len();
    let quiet = args.quiet;
    let mut done = 0;
    let report = lab::run(&config, |cell| {
        done += 1;
        if !quiet {
            eprintln!("[{done}/{cells}] {}", progress_line(cell));
        }
    })?;
    Ok(report)
}

/// The plan the flags ask for.
fn plan(args: &LabArgs) -> anyhow::Result<Plan> {
    let mut plan = if args.quick { Plan::quick() } else { Plan::full() };
    if !args.engines.is_empty() {
        plan.engines = args.engines.clone();
    }
    if !args.workloads.is_empty() {
        plan.workloads = args.workloads.clone();
    }
    if !args.concurrency.is_empty() {
        anyhow::ensure!(args.concurrency.iter().all(|&n| n > 0), "--concurrency values must be at least 1");
        plan.io_concurrency = args.concurrency.clone();
    }
    anyhow::ensure!(args.pool_size > 0, "--pool-size must be at least 1");
    plan.pool_size = args.pool_size;
    Ok(plan)
}

fn progress_line(cell: &CellResult) -> String {
    let m = &cell.measurement;
    format!(
        "{:<5} {:>6} in flight  {:<8} {:>9} req/s  {:>10} peak  {:>6} threads  {:.1}s",
        m.workload.name(),
        evidence::count(m.concurrency as f64),
        m.engine.name(),
        evidence::count(m.throughput),
        evidence::bytes(m.rss_peak as f64),
        evidence::count(m.threads as f64),
        m.elapsed_s
    )
}

pub fn run_worker(args: LabWorkerArgs) -> anyhow::Result<ExitCode> {
    super::raise_open_files_limit();
    let cell: lab::Cell = serde_json::from_str(&args.cell).context("--cell is not a lab cell")?;
    let measurement = lab::worker::measure(&cell)?;
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &measurement)?;
    writeln!(stdout)?;
    Ok(ExitCode::SUCCESS)
}

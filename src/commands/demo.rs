//! `outofsync demo`: runs the library's demo and tells the user what to try next.

use std::io::IsTerminal;
use std::process::ExitCode;

use crate::demo;

use crate::cli::DemoArgs;

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let progress = !args.no_progress && std::io::stderr().is_terminal();
    eprintln!(
        "outofsync demo: {} requests against the built-in API, 64 at a time, records into {}",
        demo::REQUESTS,
        args.dir.join("records.jsonl").display()
    );
    let runtime = super::runtime(1)?;
    let dir = args.dir.clone();
    // Spawned, not driven on this thread: see `fetch`.
    let result =
        runtime.block_on(async move { tokio::spawn(async move { demo::run(&dir, progress).await }).await? });
    runtime.shutdown_background();
    let demo = result?;
    eprint!("{}", demo.outcome.summary);
    eprintln!(
        "\n{} inputs -> {} records, {} distinct indexes: {}",
        demo::REQUESTS,
        demo.records_found,
        demo.distinct,
        if demo.promise_kept() { "exactly one record per request." } else { "PROMISE BROKEN" }
    );
    let (requests, records) = (demo.requests.display(), demo.records.display());
    eprintln!(
        "\nThe failures above are on purpose (404s, 500s, two malformed lines). Next, try (the \
         outofsync command comes from `cargo install --path .`):\n\
         \x20 jq -c 'select(.ok | not) | {{i, url, error}}' {records} | head\n\
         \x20 outofsync serve --port 8080        # the built-in API, for your own experiments\n\
         \x20 outofsync fetch 'http://127.0.0.1:8080/json?id=[1-1000]' -c 100 -o out.jsonl\n\
         \x20 sed 's/127.0.0.1:[0-9]*/127.0.0.1:8080/' {requests} | head -n 2000 | outofsync fetch --rate 500/s -o again.jsonl\n\
         \x20 outofsync lab --quick            # async or threads? measured on this machine, in under a minute"
    );
    Ok(if demo.promise_kept() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

//! The repeatable-pull flags of `fetch`: `--cursor` and `--state` (the window of an incremental
//! run, filled into the command line's `{cursor}`), and what a run that completed saved.

use std::sync::Arc;

use outofsync::cursor::{Cursor, Lookback};
use outofsync::engine::JqFilter;
use outofsync::engine::children::Then;
use outofsync::pipeline::Outcome;
use outofsync::request::template::{Escape, fill};

use crate::cli::FetchArgs;

/// Opens the cursor of `--cursor` and `--state`, and fills `{cursor}` into the URL arguments,
/// `-H`, `-d`, `--json` and the templates of `args`.
pub fn cursor(args: &mut FetchArgs) -> anyhow::Result<Option<Arc<Cursor>>> {
    let (Some(program), Some(state)) = (&args.cursor, &args.state) else { return Ok(None) };
    let filter = JqFilter::compile(program)
        .map_err(|e| anyhow::anyhow!("--cursor: {}", e.message.replacen("--jq ", "", 1)))?;
    let lookback = match (args.lookback, args.lookback_n) {
        (Some(back), _) => Lookback::Duration(back.0),
        (None, Some(n)) => Lookback::Count(n),
        (None, None) => Lookback::None,
    };
    let cursor = Cursor::open(filter, state, args.initial.as_deref(), lookback)?;
    let value = cursor.start().to_json();
    let put = |text: &mut String, escape: Escape| *text = fill(text, "cursor", &value, escape);
    for input in args.inputs.iter_mut().filter(|input| input.contains("://")) {
        put(input, Escape::Url);
    }
    for header in args.headers.iter_mut().chain(&mut args.header_templates) {
        put(header, Escape::Raw);
    }
    if let Some(data) = args.data.as_mut().filter(|data| !data.starts_with('@')) {
        put(data, Escape::Raw);
    }
    for json in args.json.iter_mut().chain(&mut args.json_template) {
        put(json, Escape::Json);
    }
    if let Some(url) = &mut args.url_template {
        put(url, Escape::Url);
    }
    if let Some(body) = &mut args.body_template {
        put(body, Escape::Raw);
    }
    Ok(Some(Arc::new(cursor)))
}

/// The child requests of `--then` and `--then-from`.
pub fn then(args: &FetchArgs) -> anyhow::Result<Option<Then>> {
    let (Some(template), Some(from)) = (&args.then, &args.then_from) else { return Ok(None) };
    if args.body == outofsync::BodyMode::None {
        anyhow::bail!("--then-from reads the parents' bodies: it cannot go with --body none");
    }
    Ok(Some(Then::new(template, from).map_err(anyhow::Error::msg)?))
}

/// One line on stderr for what a completed run saved (unless quiet).
pub fn report(outcome: &Outcome, quiet: bool) {
    if quiet {
        return;
    }
    if let Some(committed) = outcome.validators {
        eprintln!(
            "outofsync: validators kept for {} requests ({} changed by this run)",
            committed.kept, committed.changed
        );
    }
    if let Some(cursor) = &outcome.cursor {
        eprintln!("outofsync: cursor saved: {cursor}");
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: FetchArgs,
    }

    #[test]
    fn the_saved_cursor_fills_the_command_line_escaped_for_where_it_goes() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        std::fs::write(&state, r#"{"cursor":"2026-01-01T02:00:00+02:00"}"#).unwrap();
        let mut args = Wrap::parse_from([
            "x",
            "http://a.test/changes?since={cursor}",
            "-H",
            "X-Since: {cursor}",
            "--json",
            r#"{"after": {cursor}}"#,
            "--cursor",
            ".updated_at",
            "--state",
            state.to_str().unwrap(),
            "--lookback",
            "1h",
        ])
        .args;
        let cursor = cursor(&mut args).unwrap().unwrap();
        assert_eq!(cursor.start().to_string(), "2025-12-31T23:00:00Z");
        assert_eq!(args.inputs[0], "http://a.test/changes?since=2025-12-31T23%3A00%3A00Z");
        assert_eq!(args.headers[0], "X-Since: 2025-12-31T23:00:00Z");
        assert_eq!(args.json.as_deref(), Some(r#"{"after": "2025-12-31T23:00:00Z"}"#));
    }
}

use clap::error::{ContextKind, ContextValue, ErrorKind};

use super::*;

/// A value each argument of `fetch` accepts, by its id or its value name. A flag whose value
/// name is new needs one here: the test says which.
fn sample(arg: &clap::Arg) -> String {
    if let Some(value) = arg.get_possible_values().last() {
        return value.get_name().to_owned();
    }
    let by_id = match arg.get_id().as_str() {
        "ok_status" => Some("200-299,304"),
        "noproxy" => Some("internal.test"),
        "keep_headers" => Some("etag"),
        "initial" => Some("1970-01-01T00:00:00Z"),
        "json" | "json_template" => Some(r#"{"a": 1}"#),
        "lookback_n" | "window" | "threads" => Some("3"),
        _ => None,
    };
    if let Some(value) = by_id {
        return value.to_owned();
    }
    let name =
        arg.get_value_names().and_then(|names| names.first()).map(ToString::to_string).unwrap_or_default();
    match name.as_str() {
        "N" => "7",
        "RATE" => "5/s",
        "METHOD" => "PUT",
        "HEADER" => "X-Job: yes",
        "DATA" | "BODY" => "a body",
        "NAME" => "job-agent",
        "USER:PASSWORD" => "ann:secret",
        "DURATION" => "7s",
        "HOST:PORT:ADDR" => "api.test:443:127.0.0.1",
        "FILE" => "some/file.jsonl",
        "TEMPLATE" => "http://api.test/{id}",
        "FILTER" | "JQ" => ".items",
        "HOW" => "json:.next",
        "SIZE" => "1MiB",
        "URL" => "http://proxy.test:3128",
        "VALUE" => "0",
        "INPUT" => "urls.txt",
        "K/N" => "1/4",
        "KEY=VALUE,…" => "init=8,mode=window",
        "ADDR" => "127.0.0.1:9184",
        "VAR" => "API_TOKEN",
        "NAME: VAR" => "X-Api-Key: API_KEY",
        "NAME=VAR" => "api_key=API_KEY",
        "USER_VAR:PASS_VAR" => "API_USER:API_PASSWORD",
        "SCOPE" => "read",
        "AUDIENCE" => "https://api.test",
        "HOST[:PORT]" => "api.test:8443",
        other => panic!("no sample value for {other} (--{:?}): add one to job/tests.rs", arg.get_long()),
    }
    .to_owned()
}

/// Matches of `fetch` with `args`, adding any argument clap says they require.
fn matches_of(mut args: Vec<String>) -> ArgMatches {
    let command = fetch_command();
    for _ in 0..8 {
        match command.clone().try_get_matches_from(std::iter::once("fetch".to_owned()).chain(args.clone())) {
            Ok(matches) => return matches,
            Err(e) if e.kind() == ErrorKind::MissingRequiredArgument => {
                let Some(ContextValue::Strings(missing)) = e.get(ContextKind::InvalidArg) else {
                    panic!("{e}")
                };
                for missing in missing {
                    let long = missing.trim_start_matches("--").split([' ', '=']).next().unwrap().to_owned();
                    let arg = command.get_arguments().find(|a| a.get_long() == Some(long.as_str())).unwrap();
                    let mut extra = vec![format!("--{long}")];
                    if arg.get_action().takes_values() {
                        extra.push(sample(arg));
                    }
                    args.splice(0..0, extra);
                }
            }
            Err(e) => panic!("{args:?}: {e}"),
        }
    }
    panic!("{args:?}: requirements do not settle");
}

#[test]
fn every_flag_of_fetch_round_trips_through_a_job_file() {
    let command = fetch_command();
    let mut seen = 0;
    for arg in command.get_arguments().filter(|a| !NOT_IN_JOBS.contains(&a.get_id().as_str())) {
        let args = match (arg.get_long(), arg.get_action()) {
            (None, _) => vec![sample(arg), "-".to_owned()],
            (Some(long), ArgAction::SetTrue) => vec![format!("--{long}")],
            (Some(long), ArgAction::Count) => vec![format!("--{long}"), format!("--{long}")],
            (Some(long), ArgAction::Append) => {
                vec![format!("--{long}"), sample(arg), format!("--{long}"), sample(arg)]
            }
            (Some(long), _) => vec![format!("--{long}"), sample(arg)],
        };
        let first = matches_of(args.clone());
        let job = job_of_matches(&first);
        let key = arg.get_long().unwrap_or("inputs");
        assert!(
            job.lines().any(|line| line.starts_with(&format!("{key} = "))),
            "{key} is not in the job:\n{job}"
        );
        let flags = flags_of_job(&job, "job.toml").unwrap_or_else(|e| panic!("{e}\n{job}"));
        let line = flags.command_line(&[]);
        let second = matches_of(line[1..].to_vec());
        assert_eq!(job_of_matches(&second), job, "{args:?}");
        let id = arg.get_id().as_str();
        let raw = |m: &ArgMatches| m.get_raw(id).map(|v| v.map(|s| s.to_owned()).collect::<Vec<_>>());
        assert_eq!(raw(&first), raw(&second), "{args:?} → {}", shell_line(&line));
        seen += 1;
    }
    assert!(seen > 60, "every argument of fetch: {seen}");
}

#[test]
fn a_typo_in_a_key_is_an_error_that_names_its_line_and_the_flag_it_meant() {
    let text = "inputs = [\"urls.txt\"]\n# the limits\nconcurency = 4\n";
    let e = flags_of_job(text, "job.toml").unwrap_err().to_string();
    assert_eq!(e, "job.toml line 3: `concurency` is not a flag of fetch (did you mean `concurrency`?)");
    let e = flags_of_job("ordered = \"yes\"\n", "job.toml").unwrap_err().to_string();
    assert_eq!(e, "job.toml line 1: `ordered` is a switch: true or false");
    let e = flags_of_job("[limits]\nconcurrency = 4\n", "job.toml").unwrap_err().to_string();
    assert!(e.starts_with("job.toml line 1: `limits` is a table"), "{e}");
    assert!(flags_of_job("concurrency = \n", "job.toml").unwrap_err().to_string().contains("not TOML"));
    assert_eq!(line_of_key(text, "concurency"), Some(3));
}

#[test]
fn a_job_file_reads_as_the_command_line_it_holds() {
    let text = r#"
inputs = ["urls.txt", "more.txt"]
concurrency = 32
header = ["Accept: application/json", "X-Team: blue"]
ordered = true
jq = ".items | map(.id)"
"#;
    let flags = flags_of_job(text, "job.toml").unwrap();
    let line = shell_line(&flags.command_line(&["--resume".to_owned()]));
    assert_eq!(
        line,
        "fetch --concurrency 32 --header 'Accept: application/json' --header 'X-Team: blue' --ordered \
         --jq '.items | map(.id)' --resume -- urls.txt more.txt"
    );
}

//! Job files: `outofsync run job.toml`, a TOML file that holds exactly what the flags of `fetch`
//! hold — each key a long flag's name (`concurrency = 64`, `url-template = "…"`, `header = […]`),
//! `inputs` the inputs — and `fetch --dump-job`, the other way round.
//!
//! Both directions are built on clap's own list of `fetch`'s arguments, not on a list kept here:
//! a flag added to `FetchArgs` has its key at once, with the kind its action gives it (a switch
//! is a boolean, a repeatable flag an array, a counted one an integer).

use std::fmt::Write as _;
use std::ops::Range;

use clap::{ArgAction, ArgMatches, Args, parser::ValueSource};

use crate::cli::FetchArgs;

/// What kind of TOML value a flag takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The inputs: an array of strings (or one string).
    Inputs,
    /// A switch: `true` (or `false`, the same as leaving it out).
    Switch,
    /// A counted flag: how many times.
    Count,
    /// A repeatable flag: an array (or one value).
    Many,
    /// A flag with one value: a string, a number or a boolean, as it would be typed.
    One,
}

/// One argument of `fetch`, as a job file writes it.
#[derive(Clone, Debug)]
struct Key {
    /// clap's id.
    id: String,
    /// The key in the file: the long flag's name, or `inputs`.
    name: String,
    kind: Kind,
}

/// The arguments a job file cannot hold: what asks for help, and the flag that writes a job file.
const NOT_IN_JOBS: [&str; 2] = ["help", "dump_job"];

/// `fetch`'s arguments, as clap defines them.
pub fn fetch_command() -> clap::Command {
    FetchArgs::augment_args(clap::Command::new("fetch"))
}

fn keys() -> Vec<Key> {
    fetch_command()
        .get_arguments()
        .filter(|arg| !NOT_IN_JOBS.contains(&arg.get_id().as_str()))
        .map(|arg| {
            let id = arg.get_id().to_string();
            let (name, kind) = match arg.get_long() {
                None => ("inputs".to_owned(), Kind::Inputs),
                Some(long) => {
                    let kind = match arg.get_action() {
                        ArgAction::SetTrue => Kind::Switch,
                        ArgAction::Count => Kind::Count,
                        ArgAction::Append => Kind::Many,
                        _ => Kind::One,
                    };
                    (long.to_owned(), kind)
                }
            };
            Key { id, name, kind }
        })
        .collect()
}

/// Why a job file cannot be run: the message names the file and the line.
#[derive(Debug, thiserror::Error)]
#[error("{file} line {line}: {message}")]
pub struct JobError {
    file: String,
    line: usize,
    message: String,
}

/// What a job file holds, as a command line of `fetch`: its flags, and its inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFlags {
    /// The flags, each with its value.
    pub flags: Vec<String>,
    /// The inputs.
    pub inputs: Vec<String>,
}

impl JobFlags {
    /// The command line `outofsync fetch FLAGS EXTRA -- INPUTS` (without `outofsync`).
    pub fn command_line(&self, extra: &[String]) -> Vec<String> {
        let mut line = vec!["fetch".to_owned()];
        line.extend(self.flags.iter().chain(extra).cloned());
        if !self.inputs.is_empty() {
            line.push("--".to_owned());
            line.extend(self.inputs.iter().cloned());
        }
        line
    }
}

/// The line of `text` (a job file) that sets the key of the long flag `name`, if one does.
pub fn line_of_key(text: &str, name: &str) -> Option<usize> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let span = doc.as_table().key(name)?.span()?;
    Some(text[..span.start].matches('\n').count() + 1)
}

/// The flags and inputs that the job file `text` (named `file` in errors) holds.
///
/// # Errors
/// The file is not TOML, or a key is not a flag of `fetch`, or a value is not of its flag's kind.
pub fn flags_of_job(text: &str, file: &str) -> Result<JobFlags, JobError> {
    let line_of = |span: Option<Range<usize>>| {
        span.map_or(1, |s| text[..s.start.min(text.len())].matches('\n').count() + 1)
    };
    let error = |line: usize, message: String| JobError { file: file.to_owned(), line, message };
    let doc = toml_edit::Document::parse(text)
        .map_err(|e| error(line_of(e.span()), format!("not TOML: {}", e.message())))?;
    let keys = keys();
    let (mut flags, mut inputs) = (Vec::new(), Vec::new());
    for (name, item) in doc.as_table().iter() {
        let span = line_of(doc.as_table().key(name).and_then(toml_edit::Key::span));
        let Some(value) = item.as_value() else {
            return Err(error(
                span,
                format!("`{name}` is a table: a job file holds fetch's flags at its top level"),
            ));
        };
        let Some(key) = keys.iter().find(|k| k.name == name) else {
            let near = keys.iter().map(|k| (distance(&k.name, name), &k.name)).min().filter(|(d, _)| *d <= 3);
            let hint = near.map(|(_, k)| format!(" (did you mean `{k}`?)")).unwrap_or_default();
            return Err(error(span, format!("`{name}` is not a flag of fetch{hint}")));
        };
        let flag = format!("--{name}");
        let text_of = |value: &toml_edit::Value| -> Result<String, JobError> {
            match value {
                toml_edit::Value::String(s) => Ok(s.value().clone()),
                toml_edit::Value::Integer(n) => Ok(n.value().to_string()),
                toml_edit::Value::Float(f) => Ok(f.value().to_string()),
                toml_edit::Value::Boolean(b) => Ok(b.value().to_string()),
                _ => Err(error(span, format!("`{name}` takes a string or a number"))),
            }
        };
        let list = |value: &toml_edit::Value| -> Result<Vec<String>, JobError> {
            match value {
                toml_edit::Value::Array(items) => items.iter().map(text_of).collect(),
                one => Ok(vec![text_of(one)?]),
            }
        };
        match key.kind {
            Kind::Inputs => inputs = list(value)?,
            Kind::Switch => match value.as_bool() {
                Some(true) => flags.push(flag),
                Some(false) => {}
                None => return Err(error(span, format!("`{name}` is a switch: true or false"))),
            },
            Kind::Count => {
                let n = value.as_integer().filter(|n| (0..=16).contains(n));
                let n = n.ok_or_else(|| error(span, format!("`{name}` is a count: 0 to 16")))?;
                flags.extend(std::iter::repeat_n(flag, n as usize));
            }
            Kind::Many => {
                for one in list(value)? {
                    flags.push(flag.clone());
                    flags.push(one);
                }
            }
            Kind::One => {
                flags.push(flag);
                flags.push(text_of(value)?);
            }
        }
    }
    Ok(JobFlags { flags, inputs })
}

/// The job file of a `fetch` command line: every argument given on it, in the order of `fetch`'s
/// `--help`.
pub fn job_of_matches(matches: &ArgMatches) -> String {
    let mut doc = toml_edit::DocumentMut::new();
    for key in keys() {
        if matches.value_source(&key.id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let raw: Vec<String> = matches
            .get_raw(&key.id)
            .map(|values| values.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let value = match key.kind {
            Kind::Switch => toml_edit::value(true),
            Kind::Count => toml_edit::value(i64::from(matches.get_count(&key.id))),
            Kind::Inputs | Kind::Many => toml_edit::value(raw.into_iter().collect::<toml_edit::Array>()),
            Kind::One => {
                let raw = raw.into_iter().next().unwrap_or_default();
                // A number is written as one (`concurrency = 64`) when it reads back the same.
                match raw.parse::<i64>() {
                    Ok(n) if n.to_string() == raw => toml_edit::value(n),
                    _ => toml_edit::value(raw),
                }
            }
        };
        doc.insert(&key.name, value);
    }
    doc.to_string()
}

/// A command line as a shell reads it back: each argument quoted when it needs to be.
pub fn shell_line(args: &[String]) -> String {
    let mut line = String::new();
    for (n, arg) in args.iter().enumerate() {
        if n > 0 {
            line.push(' ');
        }
        let plain =
            !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b));
        if plain {
            line.push_str(arg);
        } else {
            _ = write!(line, "'{}'", arg.replace('\'', r"'\''"));
        }
    }
    line
}

/// Levenshtein distance, for the key a typo meant.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests;

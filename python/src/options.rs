//! Keyword arguments to a fetcher's configuration and to a run's settings.
//!
//! The names are the command line's flags in snake case (`per_host` is `--per-host`), durations are
//! seconds, and `None` leaves a setting at its default. Every check of a value is the core's
//! (`Rate`, `JqFilter`, `FetcherBuilder::build`…), so a bad value gets the message the command line
//! gives; only the option's name is added.

use std::path::PathBuf;
use std::time::Duration;

use outofsync::engine::{HttpVersion, KeepHeaders, Paginate};
use outofsync::output::{Fsync, ResumeOptions, Start};
use outofsync::request::parse_header_pair;
use outofsync::{BodyMode, Fetcher, FetcherBuilder, engine::JqFilter};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// The options of a fetcher (`Session(...)`, and `stream(...)` beside the run options).
pub const FETCHER_OPTIONS: [&str; 28] = [
    "concurrency",
    "per_host",
    "rate",
    "global_rate",
    "retries",
    "backoff",
    "max_backoff",
    "max_retry_after",
    "retry_non_idempotent",
    "timeout",
    "connect_timeout",
    "read_timeout",
    "deadline",
    "max_body",
    "max_redirects",
    "https_only",
    "body",
    "headers",
    "keep_headers",
    "ok_status",
    "jq",
    "http",
    "insecure",
    "ca_file",
    "resolve",
    "paginate",
    "max_pages",
    "user_agent",
];

/// The options of a run (`stream`, `fetch_all`, `fetch_batch`).
pub const RUN_OPTIONS: [&str; 7] =
    ["ordered", "output", "resume", "overwrite", "retry_failed", "fsync", "batch_bytes"];

/// What a run does besides fetching.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// Records in input order.
    pub ordered: bool,
    /// The journal, if any.
    pub output: Option<PathBuf>,
    /// What to do with an output that holds records.
    pub start: Start,
    /// When the journal is synced.
    pub fsync: Fsync,
    /// The most bytes of bodies handed to Python in one batch (at least one record).
    pub batch_bytes: usize,
}

/// Bytes of bodies per batch by default: large enough that small records come in hundreds per
/// wake-up, small enough that big bodies come a few at a time.
const BATCH_BYTES: usize = 1 << 20;

fn type_error(name: &str, expected: &str, value: &Bound<'_, PyAny>) -> PyErr {
    let got = value.get_type().name().map_or_else(|_| "?".to_owned(), |n| n.to_string());
    PyTypeError::new_err(format!("{name}: expected {expected}, got {got}"))
}

fn value_error(name: &str, why: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{name}: {why}"))
}

fn int<T: for<'a, 'py> FromPyObject<'a, 'py>>(name: &str, value: &Bound<'_, PyAny>) -> PyResult<T> {
    if value.is_instance_of::<pyo3::types::PyBool>() {
        return Err(type_error(name, "an int", value));
    }
    value.extract::<T>().map_err(|_| {
        if value.is_instance_of::<pyo3::types::PyInt>() {
            value_error(name, format!("{value} is out of range"))
        } else {
            type_error(name, "an int", value)
        }
    })
}

fn boolean(name: &str, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    value.extract::<bool>().map_err(|_| type_error(name, "a bool", value))
}

fn string(name: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    value.extract::<String>().map_err(|_| type_error(name, "a str", value))
}

fn path(name: &str, value: &Bound<'_, PyAny>) -> PyResult<PathBuf> {
    value.extract::<PathBuf>().map_err(|_| type_error(name, "a path (str or os.PathLike)", value))
}

fn seconds(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let secs: f64 = value.extract().map_err(|_| type_error(name, "seconds (int or float)", value))?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| value_error(name, format!("{secs} s: give a number of seconds above 0")))
}

fn parsed<T>(name: &str, value: &Bound<'_, PyAny>) -> PyResult<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    parsed_str(name, &string(name, value)?)
}

fn parsed_str<T>(name: &str, text: &str) -> PyResult<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| value_error(name, e))
}

/// A fetcher of `options` (see [`FETCHER_OPTIONS`]), from `builder`'s settings.
pub fn fetcher(options: &Bound<'_, PyDict>, mut builder: FetcherBuilder) -> PyResult<Fetcher> {
    let mut headers = outofsync::engine::default_headers();
    for (key, value) in options.iter() {
        let name = key.cast::<PyString>().map_err(|_| PyTypeError::new_err("option names are str"))?;
        let name = name.to_str()?;
        if value.is_none() {
            continue;
        }
        let value = &value;
        builder = match name {
            "concurrency" => builder.concurrency(int(name, value)?),
            "per_host" => builder.per_host(int(name, value)?),
            "rate" => builder.rate(parsed(name, value)?),
            "global_rate" => builder.global_rate(parsed(name, value)?),
            "retries" => builder.retries(int(name, value)?),
            "backoff" => builder.backoff(seconds(name, value)?),
            "max_backoff" => builder.max_backoff(seconds(name, value)?),
            "max_retry_after" => builder.max_retry_after(seconds(name, value)?),
            "retry_non_idempotent" => builder.retry_non_idempotent(boolean(name, value)?),
            "timeout" => builder.timeout(seconds(name, value)?),
            "connect_timeout" => builder.connect_timeout(seconds(name, value)?),
            "read_timeout" => builder.read_timeout(seconds(name, value)?),
            "deadline" => builder.deadline(seconds(name, value)?),
            "max_body" => builder.max_body(int(name, value)?),
            "max_redirects" => builder.max_redirects(int(name, value)?),
            "https_only" => builder.https_only(boolean(name, value)?),
            "body" => builder.body(parsed::<BodyMode>(name, value)?),
            "headers" => {
                let dict =
                    value.cast::<PyDict>().map_err(|_| type_error(name, "a dict of str to str", value))?;
                for (k, v) in dict.iter() {
                    let (k, v) = (string("a header name", &k)?, string("a header value", &v)?);
                    let (k, v) = parse_header_pair(&k, &v).map_err(|e| value_error(name, e))?;
                    headers.insert(k, v);
                }
                builder
            }
            "user_agent" => {
                let agent = string(name, value)?;
                let (k, v) = parse_header_pair("user-agent", &agent).map_err(|e| value_error(name, e))?;
                headers.insert(k, v);
                builder
            }
            "keep_headers" => builder.keep_headers(keep_headers(name, value)?),
            "ok_status" => builder.ok_status(parsed(name, value)?),
            "jq" => {
                builder.filter(JqFilter::compile(&string(name, value)?).map_err(|e| value_error(name, e))?)
            }
            "http" => builder.http(match string(name, value)?.as_str() {
                "auto" => HttpVersion::Auto,
                "1.1" => HttpVersion::Http1Only,
                "2" => HttpVersion::Http2PriorKnowledge,
                other => return Err(value_error(name, format!("{other:?}: use \"auto\", \"1.1\" or \"2\""))),
            }),
            "insecure" => builder.danger_accept_invalid_certs(boolean(name, value)?),
            "ca_file" => builder.ca_file(path(name, value)?),
            "resolve" => {
                let entries: Vec<String> =
                    value.extract().map_err(|_| type_error(name, "a list of \"HOST:PORT:ADDR\"", value))?;
                entries
                    .iter()
                    .try_fold(builder, |b, entry| Ok::<_, PyErr>(b.resolve(parsed_str(name, entry)?)))?
            }
            "paginate" => builder.paginate(parsed::<Paginate>(name, value)?),
            "max_pages" => builder.max_pages(int(name, value)?),
            other => return Err(unknown(other, &FETCHER_OPTIONS)),
        };
    }
    builder.headers(headers).build().map_err(|e| PyValueError::new_err(e.to_string()))
}

fn keep_headers(name: &str, value: &Bound<'_, PyAny>) -> PyResult<KeepHeaders> {
    if let Ok(all) = value.extract::<bool>() {
        return Ok(if all { KeepHeaders::All } else { KeepHeaders::None });
    }
    let names: Vec<String> =
        value.extract().map_err(|_| type_error(name, "True, False or a list of header names", value))?;
    names
        .iter()
        .map(|n| http_name(n).ok_or_else(|| value_error(name, format!("{n:?} is not a header name"))))
        .collect::<PyResult<_>>()
        .map(KeepHeaders::Only)
}

fn http_name(name: &str) -> Option<http::HeaderName> {
    http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).ok()
}

fn unknown(name: &str, known: &[&str]) -> PyErr {
    PyTypeError::new_err(format!("unknown option {name:?}; the options are: {}", known.join(", ")))
}

/// The settings of a run from `options` (see [`RUN_OPTIONS`]).
pub fn run(options: &Bound<'_, PyDict>) -> PyResult<RunSettings> {
    let mut settings = RunSettings {
        ordered: false,
        output: None,
        start: Start::New,
        fsync: Fsync::Interval,
        batch_bytes: BATCH_BYTES,
    };
    let (mut resume, mut overwrite, mut retry_failed) = (false, false, false);
    for (key, value) in options.iter() {
        let name = key.cast::<PyString>().map_err(|_| PyTypeError::new_err("option names are str"))?;
        let name = name.to_str()?;
        if value.is_none() {
            continue;
        }
        match name {
            "ordered" => settings.ordered = boolean(name, &value)?,
            "output" => settings.output = Some(path(name, &value)?),
            "resume" => resume = boolean(name, &value)?,
            "overwrite" => overwrite = boolean(name, &value)?,
            "retry_failed" => retry_failed = boolean(name, &value)?,
            "fsync" => settings.fsync = parsed(name, &value)?,
            "batch_bytes" => settings.batch_bytes = int::<usize>(name, &value)?.max(1),
            other => return Err(unknown(other, &RUN_OPTIONS)),
        }
    }
    settings.start = match (resume, overwrite) {
        (true, true) => return Err(PyValueError::new_err("resume and overwrite exclude each other")),
        // The inputs are the caller's: a resume takes its word that they are the first run's,
        // in the same order (the manifest still checks the options).
        (true, false) => Start::Resume(ResumeOptions { retry_failed, assume_same_input: true }),
        (false, true) => Start::Overwrite,
        (false, false) => Start::New,
    };
    if settings.output.is_none() && (resume || overwrite) {
        return Err(PyValueError::new_err("resume and overwrite need an output file (output=…)"));
    }
    if retry_failed && !resume {
        return Err(PyValueError::new_err("retry_failed goes with resume=True"));
    }
    Ok(settings)
}

//! What Python hands in, and how it reaches the engine.
//!
//! An input is a URL (`str`), a request dict — the JSONL request object of `outofsync fetch`
//! (`{"url": …, "method": …, "headers": …, "json": …, "id": …}`, other fields carried into
//! `meta`), read by the core's own line parser — or a [`Request`]. An input that cannot become a
//! request (a bad URL, a bad method) is not an exception: it ends as an `invalid_request` record,
//! as on the command line. Anything else in the inputs (a number, `None`, bytes) is a programming
//! error, a `TypeError` that names its position.
//!
//! [`Feed`] is the queue between the Python thread, which converts inputs (it holds the GIL for
//! that), and the engine, which pulls them as it has room: bounded, so a generator of ten million
//! URLs is read as the requests go, and the engine says when it runs low ([`Feed::hungry`]).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::Stream;
use outofsync::request::{LineDefaults, Parsed, RequestSpec, parse_line, parse_method};
use outofsync::{Input, InvalidInput};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use serde_json::value::RawValue;
use tokio::sync::Notify;

/// `json.dumps`, looked up once.
fn dumps(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static DUMPS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    DUMPS.import(py, "json", "dumps")
}

/// `value` as JSON text (`json.dumps`).
fn to_json(value: &Bound<'_, PyAny>) -> PyResult<String> {
    dumps(value.py())?.call1((value,))?.extract()
}

/// A request: what a JSONL request object says, as a Python object.
///
/// `Request(url, method="GET", headers=None, body=None, json=None, id=None, meta=None)`. A URL or
/// method that is not valid does not raise: the request ends as an `invalid_request` record.
#[pyclass(frozen, module = "outofsync._outofsync")]
#[derive(Debug)]
pub struct Request {
    input: Input,
    url: String,
    method: String,
}

#[pymethods]
impl Request {
    #[new]
    #[pyo3(signature = (url, method = "GET", *, headers = None, body = None, json = None, id = None, meta = None))]
    fn new(
        url: String,
        method: &str,
        headers: Option<&Bound<'_, PyDict>>,
        body: Option<&Bound<'_, PyAny>>,
        json: Option<&Bound<'_, PyAny>>,
        id: Option<&Bound<'_, PyAny>>,
        meta: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        if body.is_some() && json.is_some() {
            return Err(pyo3::exceptions::PyValueError::new_err("give body or json, not both"));
        }
        let body = match body {
            None => None,
            Some(b) if b.is_instance_of::<PyString>() => Some(Bytes::from(b.extract::<String>()?)),
            Some(b) => Some(Bytes::from(b.extract::<Vec<u8>>().map_err(|_| {
                PyTypeError::new_err("Request body: expected str or bytes (json= for an object)")
            })?)),
        };
        let json = json.map(to_json).transpose()?;
        let id = id.map(raw).transpose()?;
        let meta = match meta {
            None => None,
            Some(m) if m.is_instance_of::<PyDict>() => Some(raw(m)?),
            Some(_) => return Err(PyTypeError::new_err("Request meta: expected a dict")),
        };
        let mut header_pairs = Vec::new();
        if let Some(headers) = headers {
            for (k, v) in headers.iter() {
                let (k, v): (String, String) = (
                    k.extract()?,
                    v.extract().map_err(|_| {
                        PyTypeError::new_err(format!("Request header {k}: expected a str value"))
                    })?,
                );
                header_pairs.push((k, v));
            }
        }
        let spec = (|| -> Result<RequestSpec, InvalidInput> {
            let method = parse_method(method).map_err(InvalidInput::new)?;
            let mut spec = RequestSpec::new(method, &url)?;
            for (k, v) in &header_pairs {
                spec = spec.header(k, v)?;
            }
            if let Some(json) = json {
                let value = serde_json::from_str::<Box<RawValue>>(&json)
                    .map_err(|e| InvalidInput::new(format!("json is not JSON: {e}")))?;
                spec = spec.json(&value);
            }
            spec.body = body.or(spec.body);
            spec.id = id;
            spec.meta = meta;
            Ok(spec)
        })();
        Ok(Request { input: spec.into(), url, method: method.to_owned() })
    }

    /// The URL as given.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    /// The method as given.
    #[getter]
    fn method(&self) -> &str {
        &self.method
    }

    fn __repr__(&self) -> String {
        format!("Request({:?}, {:?})", self.url, self.method)
    }
}

/// `value` as a raw JSON value.
fn raw(value: &Bound<'_, PyAny>) -> PyResult<Box<RawValue>> {
    let text = to_json(value)?;
    RawValue::from_string(text).map_err(|e| PyTypeError::new_err(format!("not JSON: {e}")))
}

/// How the line parser reads a request dict: no globs (a `[` in a Python URL is a `[`).
fn defaults() -> &'static LineDefaults {
    static DEFAULTS: std::sync::OnceLock<LineDefaults> = std::sync::OnceLock::new();
    DEFAULTS.get_or_init(|| LineDefaults { no_globs: true, ..LineDefaults::default() })
}

/// Input number `position` as the engine takes it.
///
/// # Errors
/// `TypeError` for anything but a `str`, a `dict` or a [`Request`].
pub fn to_input(item: &Bound<'_, PyAny>, position: u64) -> PyResult<Input> {
    if let Ok(url) = item.cast::<PyString>() {
        return Ok(Input::from(url.to_str()?));
    }
    if item.is_instance_of::<PyDict>() {
        let text = to_json(item).map_err(|e| {
            PyTypeError::new_err(format!("inputs[{position}]: the request dict is not JSON: {e}"))
        })?;
        return Ok(match parse_line(&text, None, defaults()) {
            Parsed::One(spec) => Input::Request(spec),
            Parsed::Invalid(invalid) => Input::Invalid(invalid),
            Parsed::Skip | Parsed::Glob(_) => Input::Invalid(InvalidInput::new("not a request object")),
        });
    }
    if let Ok(request) = item.cast::<Request>() {
        return Ok(request.get().input.clone());
    }
    Err(wrong_type(item, position))
}

fn wrong_type(item: &Bound<'_, PyAny>, position: u64) -> PyErr {
    let kind = item.get_type().name().map_or_else(|_| "?".to_owned(), |n| n.to_string());
    let shown = item.repr().map_or_else(|_| "?".to_owned(), |r| r.to_string());
    let shown: String = shown.chars().take(80).collect();
    PyTypeError::new_err(format!(
        "inputs[{position}] has type {kind} ({shown}): give a URL (str), a request dict \
         ({{\"url\": …}}) or an outofsync.Request"
    ))
}

/// Checks the type of every item of a list or tuple before anything is sent, so that a stray
/// value fails the call at once instead of half-way through a run.
///
/// # Errors
/// `TypeError` naming the first wrong item.
#[pyfunction]
pub fn check_inputs(inputs: &Bound<'_, PyAny>) -> PyResult<()> {
    let check = |n: usize, item: Bound<'_, PyAny>| {
        if item.is_instance_of::<PyString>()
            || item.is_instance_of::<PyDict>()
            || item.is_instance_of::<Request>()
        {
            Ok(())
        } else {
            Err(wrong_type(&item, n as u64))
        }
    };
    if let Ok(list) = inputs.cast::<PyList>() {
        list.iter().enumerate().try_for_each(|(n, item)| check(n, item))
    } else if let Ok(tuple) = inputs.cast::<PyTuple>() {
        tuple.iter().enumerate().try_for_each(|(n, item)| check(n, item))
    } else {
        Ok(())
    }
}

/// The queue of inputs between Python and the engine (see the module documentation).
#[derive(Debug)]
pub struct Feed {
    state: Mutex<FeedState>,
    /// Notified when the engine runs low on inputs.
    hungry: Notify,
}

#[derive(Debug)]
struct FeedState {
    queue: VecDeque<(u64, Input)>,
    /// Python has no more inputs.
    closed: bool,
    /// The position of the next input pushed.
    next: u64,
    /// The engine waits for an input.
    waker: Option<Waker>,
    /// The engine has asked for more since the last push.
    asked: bool,
    /// Inputs queued at most.
    high: usize,
}

impl Feed {
    /// A feed that holds at most `high` inputs.
    pub fn new(high: usize) -> Arc<Feed> {
        Arc::new(Feed {
            state: Mutex::new(FeedState {
                queue: VecDeque::new(),
                closed: false,
                next: 0,
                waker: None,
                asked: false,
                high: high.max(2),
            }),
            hungry: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Inputs the feed takes now.
    pub fn room(&self) -> usize {
        let state = self.state();
        if state.closed { 0 } else { state.high.saturating_sub(state.queue.len()) }
    }

    /// Whether Python has said there is no more input.
    pub fn is_closed(&self) -> bool {
        self.state().closed
    }

    /// Converts and queues `items` (the GIL is held), numbering them on from the last.
    ///
    /// # Errors
    /// An item of a wrong type: the items before it are queued.
    pub fn push<'py>(&self, items: impl Iterator<Item = Bound<'py, PyAny>>) -> PyResult<usize> {
        let mut converted = Vec::new();
        let mut next = self.state().next;
        let mut failed = None;
        for item in items {
            match to_input(&item, next) {
                Ok(input) => converted.push((next, input)),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            next += 1;
        }
        let n = converted.len();
        let mut state = self.state();
        state.next = next;
        state.queue.extend(converted);
        state.asked = false;
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
        drop(state);
        match failed {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// No more input: the engine ends its run once the queue is empty.
    pub fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }

    /// Resolves once the engine has asked for more input (it may have done so before the call).
    pub async fn hungry(&self) {
        self.hungry.notified().await;
    }

    /// The inputs, as the engine pulls them.
    pub fn stream(self: &Arc<Self>) -> FeedStream {
        FeedStream(self.clone())
    }
}

/// The engine's end of a [`Feed`].
#[derive(Debug)]
pub struct FeedStream(Arc<Feed>);

impl Stream for FeedStream {
    type Item = (u64, Input);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let feed = &self.0;
        let mut state = feed.state();
        // Half empty: ask for more while the rest keeps the engine busy.
        let ask = !state.closed && !state.asked && state.queue.len() <= state.high / 2;
        if ask {
            state.asked = true;
            feed.hungry.notify_one();
        }
        match state.queue.pop_front() {
            Some(item) => Poll::Ready(Some(item)),
            None if state.closed => Poll::Ready(None),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

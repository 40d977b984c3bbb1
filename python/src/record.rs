//! [`Record`] and [`Error`]: the core's record, read from Python.
//!
//! The record stays a Rust value; each attribute is made into a Python object when it is read, so
//! a record that is only counted or filtered on `ok` costs no conversion. The body reaches Python
//! as `bytes` (or `str` through `text`), and `json()` parses it with Python's own `json.loads`
//! (or the `loads` given): a 64 KiB document never becomes a tree on the Rust side first.

use outofsync::record::{Payload, version_name};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

/// An attribute of the Python package `outofsync` (the error-kind enum, the exception classes),
/// looked up once: they are Python classes, defined in `outofsync/__init__.py`.
fn api<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    cell.import(py, "outofsync", name)
}

/// `json.loads`.
fn loads(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static LOADS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    LOADS.import(py, "json", "loads")
}

/// One request's outcome: exactly one per input (one per page when paginating).
#[pyclass(frozen, module = "outofsync")]
#[derive(Debug)]
pub struct Record {
    inner: outofsync::Record,
}

impl Record {
    /// Wraps a core record.
    pub fn new(inner: outofsync::Record) -> Self {
        Record { inner }
    }

    /// Bytes of the body and strings that the record holds: what a batch counts against its
    /// byte budget.
    pub fn weight(record: &outofsync::Record) -> usize {
        let payload = match &record.payload {
            Payload::None => 0,
            Payload::Json(s) | Payload::Text(s) => s.len(),
            Payload::Binary(b) => b.len(),
        };
        256 + payload + record.url.as_ref().map_or(0, String::len)
    }
}

/// Why a request failed: `kind` (an `outofsync.ErrorKind`) and a message that names the cause.
#[pyclass(frozen, module = "outofsync")]
#[derive(Debug)]
pub struct Error {
    kind: outofsync::ErrorKind,
    message: String,
}

#[pymethods]
impl Error {
    /// The kind of failure, an `outofsync.ErrorKind` (a `str` enum: `"timeout"`, `"http_status"`…).
    #[getter]
    fn kind<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        static KIND: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        api(py, &KIND, "ErrorKind")?.call1((self.kind.as_str(),))
    }

    /// What happened, for a human.
    #[getter]
    fn message(&self) -> &str {
        &self.message
    }

    fn __str__(&self) -> String {
        format!("{}: {}", self.kind, self.message)
    }

    fn __repr__(&self) -> String {
        format!("Error(kind={:?}, message={:?})", self.kind.as_str(), self.message)
    }
}

fn parse_raw<'py>(
    py: Python<'py>,
    raw: Option<&serde_json::value::RawValue>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    raw.map(|raw| loads(py)?.call1((raw.get(),))).transpose()
}

#[pymethods]
impl Record {
    /// The input's position, from 0 (the key of `resume` and `ordered`).
    #[getter]
    fn i(&self) -> u64 {
        self.inner.i
    }

    /// The page, from 0, when paginating.
    #[getter]
    fn page(&self) -> Option<u32> {
        self.inner.page
    }

    /// The `id` of a request dict or `Request`, as given.
    #[getter]
    fn id<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        parse_raw(py, self.inner.id.as_deref())
    }

    /// The request URL (`None` for an input that never became a request).
    #[getter]
    fn url(&self) -> Option<&str> {
        self.inner.url.as_deref()
    }

    /// The URL of the last response, when redirects were followed.
    #[getter]
    fn final_url(&self) -> Option<&str> {
        self.inner.final_url.as_deref()
    }

    /// The next page's URL, when paginating and there is one.
    #[getter]
    fn next(&self) -> Option<&str> {
        self.inner.next.as_deref()
    }

    /// The method.
    #[getter]
    fn method(&self) -> Option<&str> {
        self.inner.method.as_deref()
    }

    /// Whether the request succeeded (a 2xx status, or `ok_status`, and a body that decoded).
    #[getter]
    fn ok(&self) -> bool {
        self.inner.ok
    }

    /// The final HTTP status, if a response came.
    #[getter]
    fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// The protocol of the last attempt: `"1.1"` or `"2"`.
    #[getter]
    fn http(&self) -> Option<&'static str> {
        self.inner.http.map(version_name)
    }

    /// How many times the request was sent (0 for an input that never became a request).
    #[getter]
    fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// How many redirects were followed.
    #[getter]
    fn redirects(&self) -> u32 {
        self.inner.redirects
    }

    /// Milliseconds from the first attempt to the end of the last, waits included.
    #[getter]
    fn elapsed_ms(&self) -> f64 {
        self.inner.elapsed_ms
    }

    /// The size of the body once decoded, in bytes.
    #[getter]
    fn bytes(&self) -> Option<u64> {
        self.inner.bytes
    }

    /// The response headers that were asked for (`keep_headers=`): lower-case names, a `str`
    /// per name, or a list of them for a name sent more than once. `None` when none were asked.
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(headers) = &self.inner.headers else { return Ok(None) };
        let dict = PyDict::new(py);
        for (name, value) in headers {
            let key = name.as_str();
            match dict.get_item(key)? {
                None => dict.set_item(key, value)?,
                Some(earlier) => match earlier.cast::<PyList>() {
                    Ok(list) => list.append(value)?,
                    Err(_) => {
                        dict.set_item(key, PyList::new(py, [earlier, PyString::new(py, value).into_any()])?)?
                    }
                },
            }
        }
        Ok(Some(dict))
    }

    /// The failure, or `None`.
    #[getter]
    fn error(&self) -> Option<Error> {
        self.inner.error.as_ref().map(|e| Error { kind: e.kind, message: e.message.clone() })
    }

    /// Fields of the input dict that are not part of the request, as given.
    #[getter]
    fn meta<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        parse_raw(py, self.inner.meta.as_deref())
    }

    /// The body as kept: JSON as its text (on one line), other text as is, anything else as
    /// received; `b""` when no body was kept.
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(
            py,
            match &self.inner.payload {
                Payload::None => b"",
                Payload::Json(s) | Payload::Text(s) => s.as_bytes(),
                Payload::Binary(b) => b,
            },
        )
    }

    /// The body as text, or `None` when it is not UTF-8 or was not kept.
    #[getter]
    fn text(&self) -> Option<&str> {
        match &self.inner.payload {
            Payload::Json(s) | Payload::Text(s) => Some(s),
            Payload::None | Payload::Binary(_) => None,
        }
    }

    /// Whether the body was kept as JSON.
    #[getter]
    fn is_json(&self) -> bool {
        matches!(self.inner.payload, Payload::Json(_))
    }

    /// The body parsed as JSON, by `loads` (default: `json.loads`; `orjson.loads` is faster).
    ///
    /// Raises `outofsync.RequestError` for a failed request without a body, and the parser's own
    /// error (`json.JSONDecodeError`) for a body that is not JSON.
    #[pyo3(signature = (loads = None))]
    fn json<'py>(slf: &Bound<'py, Self>, loads: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let text = match &slf.get().inner.payload {
            Payload::Json(s) | Payload::Text(s) => PyString::new(py, s).into_any(),
            Payload::Binary(b) => PyBytes::new(py, b).into_any(),
            Payload::None if slf.get().inner.error.is_some() => return Err(request_error(slf)?),
            Payload::None => PyString::new(py, "").into_any(),
        };
        match loads {
            Some(parse) => parse.call1((text,)),
            None => self::loads(py)?.call1((text,)),
        }
    }

    /// Raises `outofsync.HTTPStatusError` (for `http_status`) or `outofsync.RequestError` (any
    /// other failure) if the request failed; returns the record otherwise.
    fn raise_for_status<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        if slf.get().inner.ok { Ok(slf.clone()) } else { Err(request_error(slf)?) }
    }

    /// The record as its JSON line (without the line end): the format of `output=` and of
    /// `outofsync fetch`.
    fn to_json(&self) -> String {
        let mut line = self.inner.to_json_line();
        line.pop();
        line
    }

    /// The record as a dict of its JSON form (the body under `json`, `text` or `body_b64`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        loads(py)?.call1((self.inner.to_json_line(),))
    }

    fn __repr__(&self) -> String {
        let r = &self.inner;
        let outcome = match (&r.error, r.status) {
            (Some(e), _) => format!("error={}", e.kind),
            (None, Some(status)) => format!("status={status}"),
            (None, None) => "ok".to_owned(),
        };
        format!(
            "<Record i={} {} url={:?} attempts={}>",
            r.i,
            outcome,
            r.url.as_deref().unwrap_or(""),
            r.attempts
        )
    }
}

/// The exception for a failed record: `HTTPStatusError` for a status, else `RequestError`.
fn request_error(record: &Bound<'_, Record>) -> PyResult<PyErr> {
    static REQUEST_ERROR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    static STATUS_ERROR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = record.py();
    let inner = &record.get().inner;
    let (class, message) = match &inner.error {
        Some(e) if e.kind == outofsync::ErrorKind::HttpStatus => (
            api(py, &STATUS_ERROR, "HTTPStatusError")?,
            format!("{}: {}", e.message, inner.url.as_deref().unwrap_or("")),
        ),
        Some(e) => (api(py, &REQUEST_ERROR, "RequestError")?, format!("{}: {}", e.kind, e.message)),
        None => (api(py, &REQUEST_ERROR, "RequestError")?, "the request did not succeed".to_owned()),
    };
    Ok(PyErr::from_value(class.call1((message, record))?))
}

/// `outofsync.OutputError` with `message`: the output (`output=`) cannot be used or written.
pub fn output_error(py: Python<'_>, message: String) -> PyErr {
    static OUTPUT_ERROR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    match api(py, &OUTPUT_ERROR, "OutputError").and_then(|class| class.call1((message,))) {
        Ok(error) => PyErr::from_value(error),
        Err(e) => e,
    }
}

//! One request's life as a state machine with no I/O: [`Request::step`] takes what happened (a
//! turn granted, an exchange ended, a wait over) and the time, and says what to do next — ask
//! for a turn, send, wait, or stop. It alone decides attempts, retries, backoff, `Retry-After`,
//! cooldowns, redirects and deadlines, and builds the [`Record`].
//!
//! The engine's async loop and the lab's blocking threads are two short drivers of it (as h2 and
//! quinn split `proto` from I/O, or Python's h11): whatever carries a request, the same rules
//! apply, and they are tested here without sockets, runtimes or clocks.
//!
//! A driver's loop, in full:
//!
//! ```text
//! let mut request = Request::new(&config, i, input);
//! let mut event = Event::Start;
//! loop {
//!     match request.step(event, now()) {
//!         Step::Turn { until }          => event = wait for a turn to request.hop()'s origin (Turn, or NoTurn at `until`),
//!         Step::Authorize { until, refresh } => event = credentials for request.hop() (Authorized, or AuthFailed),
//!         Step::Send { budget }         => event = exchange request.outgoing() within `budget` (Exchanged, or TimedOut),
//!         Step::Wait { until, cool_down } => { hold the origin until `cool_down`; sleep until `until`; event = Waited }
//!         Step::Done { cool_down }      => { hold the origin until `cool_down`; return request.finish() }
//!     }
//! }
//! ```
//!
//! `Step::Authorize` comes only with [`Config::auth`] set: the driver asks the provider for the
//! credentials of the hop (or for new ones, when `refresh`: a `401` refused those of
//! [`Request::credentials`]) — the provider's I/O, which the machine knows nothing of.

mod auth;
mod walk;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderMap;
use url::Url;

use super::conditional::Validators;
use super::config::{BodyMode, Config, KeepHeaders};
use super::payload;
use super::redirect;
use super::retry::{self, RetryCause};
use crate::engine::auth::Credentials;
use crate::record::{Attempt, ErrorKind, Payload, Record, RecordError};
use crate::request::{Input, RequestSpec};

pub use super::exchange::{Exchanged, Hop, Resent, Response, Wire, is_redirect};
pub use super::failure::Failure;
use auth::AuthState;
pub use walk::{NextPage, Walk};

/// What happened, as told to [`Request::step`].
#[derive(Debug)]
pub enum Event {
    /// The first step.
    Start,
    /// The limits granted the turn asked for by [`Step::Turn`].
    Turn,
    /// The turn did not come before the `until` of [`Step::Turn`].
    NoTurn,
    /// The exchange asked for by [`Step::Send`] ended.
    Exchanged(Result<Exchanged, Failure>, Wire),
    /// The exchange asked for by [`Step::Send`] did not end within its budget (and was dropped).
    TimedOut(Wire),
    /// The wait asked for by [`Step::Wait`] is over.
    Waited,
    /// The credentials asked for by [`Step::Authorize`]: those to send the hop with, or `None`
    /// when the hop goes to a host they are not for.
    Authorized(Option<Credentials>),
    /// No credentials could be had for [`Step::Authorize`]: the request ends with this failure,
    /// unsent.
    AuthFailed(Failure),
}

/// What to do next, as [`Request::step`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Wait for a turn to send to the origin of [`Request::hop`], until `until` at most (the
    /// request's deadline, once its first attempt has begun); then [`Event::Turn`] or
    /// [`Event::NoTurn`].
    Turn {
        /// When to give up waiting.
        until: Option<Instant>,
    },
    /// Send [`Request::hop`] now and take in its response, for `budget` at most; then
    /// [`Event::Exchanged`] or [`Event::TimedOut`].
    Send {
        /// The time the attempt may take.
        budget: Duration,
    },
    /// Give the turn back and wait until `until`; then [`Event::Waited`].
    Wait {
        /// When the next attempt may ask for its turn.
        until: Instant,
        /// Hold every request to the origin of [`Request::hop`] until then: the server said it
        /// is busy.
        cool_down: Option<Instant>,
    },
    /// Get the credentials to send [`Request::hop`] with, holding the turn, by `until` at most;
    /// then [`Event::Authorized`] or [`Event::AuthFailed`]. With `refresh`, a server refused the
    /// request's [`Request::credentials`] (a `401`): new ones are needed, and the request is sent
    /// again once with them — a send, but not a retry.
    Authorize {
        /// The request's deadline.
        until: Instant,
        /// Replace the refused credentials.
        refresh: bool,
    },
    /// The request has ended: take its record with [`Request::finish`].
    Done {
        /// As for [`Step::Wait`]: the origin's cooldown, though this request will not retry.
        cool_down: Option<Instant>,
    },
}

/// A finished request: its record, and the next page when paginating.
#[derive(Debug)]
pub struct Finished {
    /// The one record of the request.
    pub record: Record,
    /// The next page's URL, when paginating and there is one.
    pub next: Option<Url>,
    /// The validators to keep for the request, when the config keeps them
    /// ([`Config::validators`]): the response's (empty ones when it had none and some were
    /// sent), or, after a `304`, the ones sent. `None`: nothing to change.
    pub validators: Option<Validators>,
}

/// Where a request is in its life.
#[derive(Debug)]
enum Phase {
    /// Not begun.
    New,
    /// Waiting for a turn.
    Queued,
    /// Holding its turn, waiting for credentials.
    Authorizing,
    /// Its hop is on the wire.
    Sending { budget: Duration },
    /// Waiting to retry.
    Waiting,
    /// Over: how the last attempt (or the wait for its turn) ended, and why retries stopped
    /// early if they did.
    Over { outcome: Result<Exchanged, Failure>, note: Option<String> },
}

/// One request, from its input to its record; see the module documentation.
#[derive(Debug)]
pub struct Request<'c> {
    config: &'c Config,
    record: Record,
    /// What is sent next (or was sent last).
    hop: Hop,
    /// The walk's first page, when paginating: a cursor found on a page replaces its query
    /// parameter there. (Boxed, as are the validators: what most requests never have should not
    /// weigh on every request in flight.)
    first: Option<Box<Url>>,
    /// The redirect chain's URLs, the first included, once a redirect has been seen.
    visited: Vec<Url>,
    /// When the first attempt got its turn, and the deadline from then. Time queued behind other
    /// requests before that (a busy host, a slow rate) is not this request's to lose; later turns
    /// count, as they are waits between attempts.
    clock: Option<(Instant, Instant)>,
    /// When the current attempt began; `None` between attempts (a redirect continues one).
    attempt_start: Option<Instant>,
    /// Sends again at once after a stale keep-alive connection, or with refreshed credentials
    /// after a `401`: counted in `attempts`, but not retries, so they do not use up the retries.
    resends: u32,
    /// The validators the request was sent with ([`Request::condition`]).
    condition: Option<Box<Validators>>,
    /// The validators to keep, once settled.
    keep: Option<Box<Validators>>,
    /// What authenticates the request; see [`Auth`](crate::engine::auth).
    auth: AuthState,
    phase: Phase,
}

impl<'c> Request<'c> {
    /// The request of input number `i` under `config`; or, for input that is not one (invalid,
    /// or refused before it was sent), its record at once.
    ///
    /// # Errors
    /// The input's record, when it is not a request.
    pub fn new(config: &'c Config, i: u64, input: Input) -> Result<Request<'c>, Box<Record>> {
        Request::of_input(config, i, input, |spec| Arc::new(config.headers_for(spec)))
    }

    /// As [`Request::new`], with the headers of a request that sets none of its own shared
    /// (`defaults` holds `config.headers`): most requests of a run, one clone fewer each.
    pub(crate) fn sharing(
        config: &'c Config,
        defaults: &Arc<HeaderMap>,
        i: u64,
        input: Input,
    ) -> Result<Request<'c>, Box<Record>> {
        Request::of_input(config, i, input, |own| {
            if own.is_empty() { defaults.clone() } else { Arc::new(config.headers_for(own)) }
        })
    }

    fn of_input(
        config: &'c Config,
        i: u64,
        input: Input,
        headers: impl FnOnce(HeaderMap) -> Arc<HeaderMap>,
    ) -> Result<Request<'c>, Box<Record>> {
        let (mut spec, page) = match input {
            Input::Request(spec) => (*spec, None),
            Input::Page { spec, page } => (*spec, Some(page)),
            Input::Invalid(invalid) => {
                return Err(Box::new(Record::invalid(i, invalid.line, invalid.message)));
            }
            Input::Unsent { spec, page, error } => {
                let mut record = identify(i, &spec);
                let RequestSpec { url, id, meta, .. } = *spec;
                (record.url, record.id, record.meta) = (Some(url.into()), id, meta);
                (record.page, record.error) = (page, Some(error));
                return Err(Box::new(record));
            }
        };
        let mut record = identify(i, &spec);
        (record.id, record.meta, record.page) = (spec.id.take(), spec.meta.take(), page);
        let RequestSpec { method, mut url, headers: mut own, body, .. } = spec;
        credentials_to_header(&mut url, &mut own);
        let first = config.paginate.is_some().then(|| Box::new(url.clone()));
        Ok(Request {
            config,
            record,
            hop: Hop { method, url, headers: headers(own), body },
            first,
            visited: Vec::new(),
            clock: None,
            attempt_start: None,
            resends: 0,
            condition: None,
            keep: None,
            auth: AuthState::default(),
            phase: Phase::New,
        })
    }

    /// Makes the request conditional: it is sent with `If-None-Match` (the `ETag`) and
    /// `If-Modified-Since` (the `Last-Modified`) of `validators`, and a `304 Not Modified` then
    /// ends it as an ok record with `"not_modified": true` and no body (when paginating, the walk
    /// goes on from `validators.next`). Called before the first step; a request that sets either
    /// header itself is left as it is, as is one given empty validators.
    pub fn condition(&mut self, validators: Validators) {
        use http::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH};
        let headers = &self.hop.headers;
        if !matches!(self.phase, Phase::New)
            || validators.is_empty()
            || headers.contains_key(IF_NONE_MATCH)
            || headers.contains_key(IF_MODIFIED_SINCE)
        {
            return;
        }
        let headers = Arc::make_mut(&mut self.hop.headers);
        let value = |text: &Option<String>| text.as_deref().and_then(|t| http::HeaderValue::from_str(t).ok());
        if let Some(etag) = value(&validators.etag) {
            headers.insert(IF_NONE_MATCH, etag);
        }
        if let Some(date) = value(&validators.last_modified) {
            headers.insert(IF_MODIFIED_SINCE, date);
        }
        self.condition = Some(Box::new(validators));
    }

    /// Whether `response` says that what the request was sent with is still current.
    fn not_modified(&self, response: &Response) -> bool {
        self.condition.is_some() && response.status == http::StatusCode::NOT_MODIFIED
    }

    /// What is sent next, or was sent last: method, URL, headers and body of the current hop.
    pub fn hop(&self) -> &Hop {
        &self.hop
    }

    /// The record so far (what identifies the request, attempts and history).
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Moves the request on by `event`, which happened at `now`.
    ///
    /// # Panics
    /// When `event` does not answer the last [`Step`] (a driver's bug).
    pub fn step(&mut self, event: Event, now: Instant) -> Step {
        let phase = std::mem::replace(&mut self.phase, Phase::New);
        match (phase, event) {
            (Phase::New, Event::Start) | (Phase::Waiting, Event::Waited) => self.queue(),
            (Phase::Queued, Event::Turn) => self.turn(now),
            (Phase::Queued, Event::NoTurn) => self.end(Err(self.deadline_passed()), None, None),
            (Phase::Authorizing, Event::Authorized(credentials)) => {
                self.auth.sending = credentials.is_some();
                if credentials.is_some() {
                    (self.auth.credentials, self.auth.refused) = (credentials, false);
                }
                self.send(now)
            }
            (Phase::Authorizing, Event::AuthFailed(failure)) => self.end(Err(failure), None, None),
            (Phase::Sending { budget }, Event::TimedOut(wire)) => {
                let outcome = Err(self.attempt_timeout(budget));
                self.ended(outcome, wire, now)
            }
            (Phase::Sending { .. }, Event::Exchanged(outcome, wire)) => self.ended(outcome, wire, now),
            (phase, event) => panic!("request {}: {event:?} does not answer {phase:?}", self.record.i),
        }
    }

    /// Asks for the turn of the next attempt (or hop).
    fn queue(&mut self) -> Step {
        self.phase = Phase::Queued;
        Step::Turn { until: self.clock.map(|(_, deadline)| deadline) }
    }

    /// The turn has come: the deadline starts with the first, and the hop is authorized (when
    /// credentials may go with it) or sent.
    fn turn(&mut self, now: Instant) -> Step {
        let (_, deadline) = *self.clock.get_or_insert((now, now + self.config.deadline));
        if self.config.auth.is_some() && !self.auth.dropped {
            self.phase = Phase::Authorizing;
            return Step::Authorize { until: deadline, refresh: self.auth.refused };
        }
        self.auth.sending = false;
        self.send(now)
    }

    /// Sends the hop, unless the unsafe-send hook refuses.
    fn send(&mut self, now: Instant) -> Step {
        let (_, deadline) = *self.clock.get_or_insert((now, now + self.config.deadline));
        if self.record.attempts == 0
            && let Some(hook) = &self.config.before_unsafe_send
            && !retry::is_idempotent(&self.hop.method)
            && let Err(why) = hook.call(self.record.i)
        {
            return self.end(Err(Failure::new(ErrorKind::Io, format!("not sent: {why}"))), None, None);
        }
        if self.attempt_start.is_none() {
            self.record.attempts += 1;
            self.attempt_start = Some(now);
        }
        let budget = self.config.timeout.min(deadline.saturating_duration_since(now));
        self.phase = Phase::Sending { budget };
        Step::Send { budget }
    }

    /// An attempt (or hop) ended: notes what the wire saw, decides what follows, and traces both.
    fn ended(&mut self, outcome: Result<Exchanged, Failure>, wire: Wire, now: Instant) -> Step {
        let started = self.attempt_start;
        let hop =
            tracing::enabled!(target: "outofsync::wire", tracing::Level::INFO).then(|| self.traced_hop());
        let trace = hop.map(|hop| {
            (hop, outcome.as_ref().map_err(Clone::clone).map(clone_head), wire.version, wire.reused)
        });
        let resent = wire.resent.as_ref().map(|r| r.failure.message.clone());
        self.note_wire(wire);
        let replays = self.auth.replayed;
        let step = self.after(outcome, now);
        if let Some((hop, outcome, version, reused)) = trace {
            let then = match step {
                Step::Turn { .. } if self.auth.replayed && !replays => {
                    "the credentials were refused: sending again with new ones".to_owned()
                }
                Step::Turn { .. } => "following the redirect".to_owned(),
                Step::Wait { until, .. } => {
                    format!("retry in {:.0} ms", until.saturating_duration_since(now).as_secs_f64() * 1000.0)
                }
                Step::Send { .. } | Step::Authorize { .. } | Step::Done { .. } => "done".to_owned(),
            };
            let resent = resent.map(|message| super::exchange::Resent {
                failure: Failure::new(ErrorKind::Io, message),
                elapsed: Duration::ZERO,
            });
            let wire = Wire { version, reused, resent };
            let elapsed = started.map_or(Duration::ZERO, |start| now.saturating_duration_since(start));
            super::trace::attempt(&hop, &wire, &outcome, elapsed, &then);
        }
        step
    }

    /// Counts a send that met a stale connection, and notes the protocol used.
    fn note_wire(&mut self, wire: Wire) {
        if let Some(resent) = wire.resent {
            self.record.attempts += 1;
            self.resends += 1;
            self.record.push_history(Attempt {
                error: Some(resent.failure.kind),
                elapsed_ms: ms(resent.elapsed),
                stale_connection: true,
                ..Attempt::default()
            });
        }
        self.record.http = wire.version.or(self.record.http);
    }

    /// What follows an attempt (or hop) that ended as `outcome` at `now`.
    fn after(&mut self, outcome: Result<Exchanged, Failure>, now: Instant) -> Step {
        let failed = match &outcome {
            Ok(Exchanged::Redirect { status, location }) => {
                let (config, followed) = (self.config, self.record.redirects);
                return match redirect::next_hop(
                    &self.hop,
                    *status,
                    location,
                    followed,
                    config.max_redirects,
                    config.https_only,
                    &mut self.visited,
                ) {
                    Ok(mut next) => {
                        if redirect::strip_if_cross_origin(&self.hop.url, &mut next) {
                            (self.auth.dropped, self.auth.sending) = (true, false);
                        }
                        self.hop = next;
                        self.record.redirects += 1;
                        self.queue()
                    }
                    Err(message) => self.end(Err(Failure::new(ErrorKind::Redirect, message)), None, None),
                };
            }
            Ok(Exchanged::Response(response))
                if self.config.ok_status.contains(response.status.as_u16())
                    || self.not_modified(response) =>
            {
                return self.end(outcome, None, None);
            }
            Ok(Exchanged::Response(response)) if self.replays(response.status) => return self.replay(now),
            Ok(Exchanged::Response(response)) => RetryCause::Status {
                status: response.status.as_u16(),
                retry_after: retry::retry_after(&response.headers),
            },
            Err(failure) => RetryCause::Error(failure.kind),
        };
        let deadline = self.clock.map_or(now, |(_, deadline)| deadline);
        let left = deadline.saturating_duration_since(now);
        let decision =
            self.config.retry.decide(&self.hop.method, self.record.attempts - self.resends, failed, left);
        let cool_down = decision.cool_down.map(|wait| now + wait);
        let Some(wait) = decision.retry else {
            let refused_again =
                self.auth.replayed && matches!(failed, RetryCause::Status { status: 401, .. });
            let note = decision.note.or_else(|| {
                refused_again.then(|| "the server refused the refreshed credentials too".to_owned())
            });
            return self.end(outcome, note, cool_down);
        };
        let (status, error) = match failed {
            RetryCause::Status { status, .. } => (Some(status), None),
            RetryCause::Error(kind) => (None, Some(kind)),
        };
        let elapsed =
            self.attempt_start.take().map_or(Duration::ZERO, |start| now.saturating_duration_since(start));
        self.record.push_history(Attempt { status, error, elapsed_ms: ms(elapsed), ..Attempt::default() });
        self.phase = Phase::Waiting;
        Step::Wait { until: now + wait, cool_down }
    }

    fn end(
        &mut self,
        outcome: Result<Exchanged, Failure>,
        note: Option<String>,
        cool_down: Option<Instant>,
    ) -> Step {
        self.phase = Phase::Over { outcome, note };
        Step::Done { cool_down }
    }

    /// The record of the request, once a step has said [`Step::Done`], as of `now`.
    ///
    /// # Panics
    /// Before [`Step::Done`] (a driver's bug).
    pub fn finish(mut self, now: Instant) -> Finished {
        let Phase::Over { outcome, note } = std::mem::replace(&mut self.phase, Phase::New) else {
            panic!("request {}: finished before its last step", self.record.i);
        };
        let next = self.settle(outcome, note);
        let validators = self.keep.take().map(|keep| *keep);
        let mut record = self.record;
        record.next = next.as_ref().map(Url::to_string);
        match self.visited.into_iter().next() {
            Some(first) if record.redirects > 0 => {
                record.url = Some(first.into());
                record.final_url = Some(self.hop.url.into());
            }
            _ => record.url = Some(self.hop.url.into()),
        }
        self.auth.mask(&mut record);
        record.elapsed_ms = self.clock.map_or(0.0, |(start, _)| ms(now.saturating_duration_since(start)));
        Finished { record, next, validators }
    }

    /// Fills the record from how the request ended; returns the next page when paginating.
    fn settle(&mut self, outcome: Result<Exchanged, Failure>, note: Option<String>) -> Option<Url> {
        let attempts = self.record.attempts;
        let after = |message: String| {
            let mut message =
                if attempts > 1 { format!("{message} (after {attempts} attempts)") } else { message };
            if let Some(note) = &note {
                message = format!("{message}; {note}");
            }
            message
        };
        let record = &mut self.record;
        let Response { status, headers, body } = match outcome {
            Err(failure) => {
                record.error = Some(RecordError::new(failure.kind, after(failure.message)));
                return None;
            }
            Ok(Exchanged::Redirect { .. }) => unreachable!("redirects are followed or refused by step"),
            Ok(Exchanged::Response(response)) => response,
        };
        record.status = Some(status.as_u16());
        record.bytes = Some(body.len() as u64);
        if self.config.keep_headers != KeepHeaders::None {
            let kept = headers.iter().filter(|(name, _)| self.config.keep_headers.keeps(name));
            record.headers = Some(
                kept.map(|(name, value)| {
                    (name.clone(), String::from_utf8_lossy(value.as_bytes()).into_owned())
                })
                .collect(),
            );
        }
        if status == http::StatusCode::NOT_MODIFIED
            && let Some(sent) = self.condition.take()
        {
            return self.settle_not_modified(*sent, &headers);
        }
        let keeps = self.config.validators.is_some();
        let ok_status = self.config.ok_status.contains(status.as_u16());
        // A failed status keeps whatever body it came with, as best it can be read.
        let mode =
            if ok_status || self.config.body == BodyMode::None { self.config.body } else { BodyMode::Auto };
        match payload::classify(body, mode) {
            Ok(payload) => record.payload = payload,
            Err(message) => {
                record.payload = Payload::None;
                record.error = Some(RecordError::new(ErrorKind::Decode, after(message)));
            }
        }
        let mut next = None;
        if !ok_status {
            let reason = status.canonical_reason().unwrap_or("");
            let message = format!("{} {reason}", status.as_u16()).trim_end().to_owned();
            record.error = Some(RecordError::new(ErrorKind::HttpStatus, after(message)));
        } else if record.error.is_none() {
            // The next page is read from the body as it came, before `--jq` reshapes it.
            if let (Some(paginate), Some(first)) = (&self.config.paginate, &self.first) {
                match paginate.next(first, &self.hop.url, &headers, record.json_str()) {
                    Ok(found) => next = found,
                    Err(message) => record.error = Some(RecordError::new(ErrorKind::Decode, message)),
                }
            }
            if let Some(filter) = &self.config.filter {
                filter_body(record, filter);
            }
        }
        record.ok = record.error.is_none();
        if keeps && record.ok {
            let mut found = Validators::of_response(&headers);
            if let Some(found) = &mut found {
                found.next = next.as_ref().map(Url::to_string);
            }
            // A response without validators replaces ones sent: they are forgotten.
            self.keep = found.or_else(|| self.condition.is_some().then(Validators::default)).map(Box::new);
        }
        next
    }

    /// The record of a request whose validators are still current (`304`): ok, no body, and the
    /// next page the stored response named; the validators are kept, with any the 304 updates.
    fn settle_not_modified(&mut self, mut sent: Validators, headers: &HeaderMap) -> Option<Url> {
        let record = &mut self.record;
        (record.ok, record.not_modified) = (true, true);
        if let Some(fresh) = Validators::of_response(headers) {
            sent.etag = fresh.etag.or(sent.etag);
            sent.last_modified = fresh.last_modified.or(sent.last_modified);
        }
        let next = match (&self.config.paginate, &sent.next) {
            (Some(_), Some(next)) => Url::parse(next).ok(),
            _ => None,
        };
        self.keep = Some(Box::new(sent));
        next
    }

    /// The failure of an attempt that ran out of time: its own `--timeout`, or what was left of
    /// the request's `--deadline`.
    fn attempt_timeout(&self, budget: Duration) -> Failure {
        if budget < self.config.timeout {
            self.deadline_passed()
        } else {
            Failure::new(ErrorKind::Timeout, format!("no complete response within {budget:?} (--timeout)"))
        }
    }

    fn deadline_passed(&self) -> Failure {
        Failure::new(
            ErrorKind::Timeout,
            format!("the --deadline of {:?} for this request passed", self.config.deadline),
        )
    }
}

/// What a trace shows of an exchange: the same, without the body.
fn clone_head(exchanged: &Exchanged) -> Exchanged {
    match exchanged {
        Exchanged::Redirect { status, location } => {
            Exchanged::Redirect { status: *status, location: location.clone() }
        }
        Exchanged::Response(response) => Exchanged::Response(Response {
            status: response.status,
            headers: response.headers.clone(),
            body: Vec::new(),
        }),
    }
}

/// Replaces a JSON body with what `--jq` makes of it; anything else fails with `decode`.
fn filter_body(record: &mut Record, filter: &super::filter::JqFilter) {
    let outcome = match &record.payload {
        Payload::Json(json) => filter.apply(json),
        Payload::Text(_) => Err("--jq needs a JSON body; this one is text".to_owned()),
        Payload::Binary(_) => Err("--jq needs a JSON body; this one is binary".to_owned()),
        Payload::None => Err("--jq needs a JSON body; this response has none".to_owned()),
    };
    match outcome {
        Ok(json) => record.payload = Payload::Json(json),
        Err(message) => {
            record.payload = Payload::None;
            record.error = Some(RecordError::new(ErrorKind::Decode, message));
        }
    }
}

/// Moves `user:password@` out of `url` into a Basic `Authorization` header (unless the request
/// sets one), as curl does: the URL, which goes into records and logs, keeps no secret.
fn credentials_to_header(url: &mut Url, headers: &mut HeaderMap) {
    if url.username().is_empty() && url.password().is_none() {
        return;
    }
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let user = decode(url.username());
    let password = url.password().map(decode).unwrap_or_default();
    if !headers.contains_key(http::header::AUTHORIZATION) {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        if let Ok(mut value) = http::HeaderValue::from_str(&format!("Basic {token}")) {
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
        }
    }
    _ = url.set_username("");
    _ = url.set_password(None);
}

/// The record of a request about to be sent: what identifies it (position, line, method), with
/// its outcome still to be filled in.
fn identify(i: u64, spec: &RequestSpec) -> Record {
    Record { i, line: spec.line, method: Some(spec.method.as_str().to_owned()), ..Record::default() }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod tests;

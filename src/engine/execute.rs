//! A request's life: attempts under the limits, redirects, retries with backoff, and the one
//! record it ends as.

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use tokio::time::Instant;

use super::config::Config;
use super::exchange::{Exchange, Exchanged, Hop, Response, Transport, Wire};
use super::failure::Failure;
use super::limits::Limits;
use super::retry::{self, Failed};
use super::{payload, redirect};
use crate::record::{Attempt, ErrorKind, Payload, Record, RecordError};
use crate::request::RequestSpec;

/// Everything a request needs, shared by all requests of one fetcher.
///
/// Generic over what carries an exchange only so that tests can script one (see [`Exchange`]);
/// the fetcher always uses the real [`Transport`].
pub(crate) struct Engine<T = Transport> {
    pub config: Config,
    pub transport: T,
    pub limits: Limits,
    /// `config.headers`, shared by every request that sets none of its own.
    default_headers: Arc<HeaderMap>,
}

impl<T> Engine<T> {
    pub fn new(config: Config, transport: T) -> Self {
        let limits = Limits::new(&config);
        let default_headers = Arc::new(config.headers.clone());
        Self { config, transport, limits, default_headers }
    }
}

/// A finished request: its record, and the next page when paginating.
pub(crate) struct Done {
    pub record: Record,
    pub next: Option<url::Url>,
}

impl<T: Exchange> Engine<T> {
    /// Runs one request to its end: exactly one record, whatever happens.
    ///
    /// Each attempt (with the redirects it follows) takes its turn from the limits and gives it
    /// back before any wait, so a request waiting to retry holds no permit. The loop ends when an
    /// attempt succeeds, fails in a way not worth retrying, runs out of retries or of time.
    pub async fn execute(&self, i: u64, mut spec: RequestSpec) -> Done {
        // The URL goes in at the end, when the hop's own can be given up without a copy.
        let mut record = Record::taking_from(i, &mut spec);
        // Most requests set no header of their own and share the defaults.
        let headers = if spec.headers.is_empty() {
            self.default_headers.clone()
        } else {
            Arc::new(self.config.headers_for(spec.headers))
        };
        let first = self.config.paginate.is_some().then(|| spec.url.clone());
        let mut hop = Hop { method: spec.method, url: spec.url, headers, body: spec.body };
        // The chain's URLs, the first included, once a redirect has been seen.
        let mut visited = Vec::new();
        // The clock of --deadline (and of `elapsed_ms`) starts when the first attempt gets its
        // turn: time queued behind other requests (a busy host, a slow rate) is not this
        // request's to lose. Later turns count, as they are waits between attempts.
        let mut clock: Option<(Instant, Instant)> = None;
        // When the current attempt began; `None` between attempts (a redirect continues one).
        let mut attempt_start: Option<Instant> = None;
        // Sends again at once after a stale keep-alive connection: counted in `attempts`, but
        // not retries, so they do not use up `--retries`.
        let mut resends = 0;

        let (last, note) = loop {
            let host = self.limits.host(&hop.url);
            let turn = match clock {
                None => self.limits.turn(&host).await,
                Some((_, deadline)) => match tokio::time::timeout_at(deadline, self.limits.turn(&host)).await
                {
                    Ok(turn) => turn,
                    Err(_) => break (Err(deadline_passed(self.config.deadline)), None),
                },
            };
            let now = Instant::now();
            let (_, deadline) = *clock.get_or_insert((now, now + self.config.deadline));
            if record.attempts == 0
                && let Some(hook) = &self.config.before_unsafe_send
                && !retry::is_idempotent(&hop.method)
                && let Err(why) = hook.call(i)
            {
                break (Err(Failure::new(ErrorKind::Io, format!("not sent: {why}"))), None);
            }
            if attempt_start.is_none() {
                record.attempts += 1;
                attempt_start = Some(now);
            }
            let budget = self.config.timeout.min(deadline.saturating_duration_since(now));
            let mut wire = Wire::default();
            let exchanged = tokio::time::timeout(budget, self.transport.exchange(&hop, &mut wire))
                .await
                .unwrap_or_else(|_| Err(self.attempt_timeout(budget)));
            drop(turn);
            if let Some(resent) = wire.resent {
                record.attempts += 1;
                resends += 1;
                record.push_history(Attempt {
                    error: Some(resent.failure.kind),
                    elapsed_ms: ms(resent.elapsed),
                    stale_connection: true,
                    ..Attempt::default()
                });
            }
            record.http = wire.version.or(record.http);

            let failed = match &exchanged {
                Ok(Exchanged::Redirect { status, location }) => {
                    let (followed, config) = (record.redirects, &self.config);
                    match redirect::next_hop(
                        &hop,
                        *status,
                        location,
                        followed,
                        config.max_redirects,
                        config.https_only,
                        &mut visited,
                    ) {
                        Ok(mut next) => {
                            redirect::strip_if_cross_origin(&hop.url, &mut next);
                            hop = next;
                            record.redirects += 1;
                            continue;
                        }
                        Err(message) => break (Err(Failure::new(ErrorKind::Redirect, message)), None),
                    }
                }
                Ok(Exchanged::Response(response))
                    if self.config.ok_status.contains(response.status.as_u16()) =>
                {
                    break (exchanged, None);
                }
                Ok(Exchanged::Response(response)) => Failed::Status {
                    status: response.status.as_u16(),
                    retry_after: retry::retry_after(&response.headers),
                },
                Err(failure) => Failed::Error(failure.kind),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let decision = self.config.retry.decide(&hop.method, record.attempts - resends, failed, left);
            if let Some(wait) = decision.cool_down {
                host.cool_down(Instant::now() + wait);
            }
            let Some(wait) = decision.retry else { break (exchanged, decision.note) };
            let (status, error) = match failed {
                Failed::Status { status, .. } => (Some(status), None),
                Failed::Error(kind) => (None, Some(kind)),
            };
            let elapsed = attempt_start.take().map_or(Duration::ZERO, |t| t.elapsed());
            record.push_history(Attempt { status, error, elapsed_ms: ms(elapsed), ..Attempt::default() });
            tokio::time::sleep(wait).await;
        };

        let next = self.settle(&mut record, last, note, first.as_ref().map(|first| (first, &hop.url)));
        record.next = next.as_ref().map(|url| url.to_string());
        match visited.into_iter().next() {
            Some(first) if record.redirects > 0 => {
                record.url = Some(first.into());
                record.final_url = Some(hop.url.into());
            }
            _ => record.url = Some(hop.url.into()),
        }
        record.elapsed_ms = clock.map_or(0.0, |(start, _)| ms(start.elapsed()));
        Done { record, next }
    }

    /// Replaces a JSON body with what `--jq` makes of it; anything else fails with `decode`.
    fn filter(&self, record: &mut Record, filter: &super::filter::JqFilter) {
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

    /// The failure of an attempt that ran out of time: its own `--timeout`, or what was left of
    /// the request's `--deadline`.
    fn attempt_timeout(&self, budget: Duration) -> Failure {
        if budget < self.config.timeout {
            deadline_passed(self.config.deadline)
        } else {
            Failure::new(ErrorKind::Timeout, format!("no complete response within {budget:?} (--timeout)"))
        }
    }

    /// Fills the record from how the request ended; returns the next page when paginating
    /// (`pages` holds the walk's first URL and this page's).
    fn settle(
        &self,
        record: &mut Record,
        exchanged: Result<Exchanged, Failure>,
        note: Option<String>,
        pages: Option<(&url::Url, &url::Url)>,
    ) -> Option<url::Url> {
        let attempts = record.attempts;
        let after = |message: String| {
            let mut message =
                if attempts > 1 { format!("{message} (after {attempts} attempts)") } else { message };
            if let Some(note) = &note {
                message = format!("{message}; {note}");
            }
            message
        };
        match exchanged {
            Err(failure) => {
                record.error = Some(RecordError::new(failure.kind, after(failure.message)));
                None
            }
            Ok(Exchanged::Redirect { .. }) => unreachable!("redirects are followed or refused in the loop"),
            Ok(Exchanged::Response(Response { status, headers, body })) => {
                record.status = Some(status.as_u16());
                record.bytes = Some(body.len() as u64);
                let ok_status = self.config.ok_status.contains(status.as_u16());
                // A failed status keeps whatever body it came with, as best it can be read.
                let mode = if ok_status || self.config.body == super::config::BodyMode::None {
                    self.config.body
                } else {
                    super::config::BodyMode::Auto
                };
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
                    if let (Some(paginate), Some((first, current))) = (&self.config.paginate, pages) {
                        match paginate.next(first, current, &headers, record.json_str()) {
                            Ok(found) => next = found,
                            Err(message) => record.error = Some(RecordError::new(ErrorKind::Decode, message)),
                        }
                    }
                    if let Some(filter) = &self.config.filter {
                        self.filter(record, filter);
                    }
                }
                record.ok = record.error.is_none();
                next
            }
        }
    }
}

fn deadline_passed(deadline: Duration) -> Failure {
    Failure::new(ErrorKind::Timeout, format!("the --deadline of {deadline:?} for this request passed"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests;

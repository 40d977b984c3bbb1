//! A request's life: attempts under the limits, redirects, retries with backoff, and the one
//! record it ends as.

use std::time::Duration;

use tokio::time::Instant;

use super::config::Config;
use super::exchange::{Exchanged, Failure, Hop, Response, Transport};
use super::limits::Limits;
use super::payload;
use super::redirect;
use crate::record::{Attempt, ErrorKind, Payload, Record, RecordError};
use crate::request::RequestSpec;

/// Everything a request needs, shared by all requests of one fetcher.
pub(crate) struct Engine {
    pub config: Config,
    pub transport: Transport,
    pub limits: Limits,
}

/// A finished request: its record, and the next page when paginating.
pub(crate) struct Done {
    pub record: Record,
    pub next: Option<url::Url>,
}

impl Engine {
    /// Runs one request to its end: exactly one record, whatever happens.
    pub async fn execute(&self, i: u64, spec: RequestSpec) -> Done {
        let start = Instant::now();
        let deadline = start + self.config.deadline;
        let mut record = Record {
            i,
            line: spec.line,
            id: spec.id,
            meta: spec.meta,
            url: Some(spec.url.to_string()),
            method: Some(spec.method.to_string()),
            ..Record::default()
        };
        let mut headers = spec.headers;
        for (name, value) in &self.config.headers {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        let first = self.config.paginate.is_some().then(|| spec.url.clone());
        let mut hop = Hop { method: spec.method, url: spec.url, headers, body: spec.body };
        let mut visited = vec![hop.url.clone()];
        let policy = &self.config.retry;
        let retry_allowed = policy.allows(&hop.method);

        let outcome = loop {
            record.attempts += 1;
            let attempt_start = Instant::now();
            let host = self.limits.host(&hop.url);
            let exchanged = tokio::time::timeout_at(deadline, async {
                let _turn = self.limits.turn(&host).await;
                let budget = self.config.timeout.min(deadline.saturating_duration_since(Instant::now()));
                tokio::time::timeout(budget, self.transport.exchange(&hop))
                    .await
                    .unwrap_or_else(|_| Err(self.attempt_timeout(budget)))
            })
            .await
            .unwrap_or_else(|_| Err(deadline_passed(self.config.deadline)));

            // What a retry of this attempt would have to wait, if one is warranted.
            let retry_wait = match &exchanged {
                Ok(Exchanged::Redirect { status, location }) => {
                    let previous = hop.url.clone();
                    match redirect::next_hop(
                        &hop,
                        *status,
                        location,
                        record.redirects,
                        self.config.max_redirects,
                        self.config.https_only,
                        &mut visited,
                    ) {
                        Ok(mut next) => {
                            redirect::strip_if_cross_origin(&previous, &mut next);
                            hop = next;
                            record.redirects += 1;
                            // A redirect is a step of the same attempt, not a new one.
                            record.attempts -= 1;
                            continue;
                        }
                        Err(message) => break Err(Failure::new(ErrorKind::Redirect, message)),
                    }
                }
                Ok(Exchanged::Response(response)) => {
                    let status = response.status.as_u16();
                    if self.config.ok_status.contains(status)
                        || !super::config::RetryPolicy::retryable_status(status)
                    {
                        None
                    } else {
                        match super::retry::retry_after(&response.headers) {
                            Some(wait) if wait > policy.max_retry_after => {
                                break Ok((
                                    exchanged,
                                    Some(format!(
                                        "the server asked to wait {}s before retrying, over --max-retry-after {}s",
                                        wait.as_secs(),
                                        policy.max_retry_after.as_secs()
                                    )),
                                ));
                            }
                            Some(wait) => {
                                // The whole host waits, not just this request: it said it is busy.
                                host.cool_down(Instant::now() + wait);
                                Some(wait.max(policy.backoff(record.attempts)))
                            }
                            None => Some(policy.backoff(record.attempts)),
                        }
                    }
                }
                Err(failure) if super::config::RetryPolicy::retryable_error(failure.kind) => {
                    Some(policy.backoff(record.attempts))
                }
                Err(_) => None,
            };
            let Some(wait) = retry_wait else { break Ok((exchanged, None)) };
            let retries_left = record.attempts <= policy.retries && retry_allowed;
            let in_time = Instant::now() + wait < deadline;
            if !retries_left || !in_time {
                let why = (!in_time && retries_left).then(|| {
                    format!(
                        "no retry: the wait of {wait:?} would pass the --deadline of {:?}",
                        self.config.deadline
                    )
                });
                break Ok((exchanged, why));
            }
            record.history.push(Attempt {
                status: match &exchanged {
                    Ok(Exchanged::Response(r)) => Some(r.status.as_u16()),
                    _ => None,
                },
                error: exchanged.as_ref().err().map(|f| f.kind),
                elapsed_ms: ms(attempt_start.elapsed()),
            });
            if record.history.len() > Record::HISTORY_LIMIT {
                record.history.remove(0);
            }
            tokio::time::sleep(wait).await;
        };

        if record.redirects > 0 {
            record.final_url = Some(hop.url.to_string());
        }
        let next = self.settle(&mut record, outcome, first.as_ref().map(|first| (first, &hop.url)));
        record.next = next.as_ref().map(|url| url.to_string());
        record.elapsed_ms = ms(start.elapsed());
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
        outcome: Result<(Result<Exchanged, Failure>, Option<String>), Failure>,
        pages: Option<(&url::Url, &url::Url)>,
    ) -> Option<url::Url> {
        let (exchanged, note) = match outcome {
            Ok(pair) => pair,
            Err(failure) => (Err(failure), None),
        };
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

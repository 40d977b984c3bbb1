//! The engine's async driver: [`Engine`] runs each input's requests — one, or one per page — to
//! their records, carrying out what the request [`machine`](super::machine) decides: turns from
//! the limits, exchanges on the transport, waits on tokio's clock.

use std::sync::Arc;

use http::HeaderMap;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::authorize::{Authorizer, Via};
use super::config::Config;
use super::exchange::{Exchange, Wire};
use super::failure::Failure;
use super::limits::{Host, Limits, Turn};
use super::machine::{Event, Finished, NextPage, Request, Step, Walk};
use super::transport::Transport;
use crate::record::{ErrorKind, Record};
use crate::request::{Input, RequestSpec};

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
    /// `config.auth`, and the hosts it is for.
    pub auth: Option<Authorizer>,
}

impl<T> Engine<T> {
    #[cfg(test)]
    pub fn new(config: Config, transport: T) -> Self {
        let defaults = Arc::new(config.headers.clone());
        Self::with_defaults(config, transport, defaults)
    }

    /// An engine whose requests share `default_headers` (which holds `config.headers`).
    pub fn with_defaults(config: Config, transport: T, default_headers: Arc<HeaderMap>) -> Self {
        let limits = Limits::new(&config);
        let auth = Authorizer::new(&config);
        Self { config, transport, limits, default_headers, auth }
    }
}

impl<T: Exchange> Engine<T> {
    /// Runs input number `i` to its end and hands over its records: one, or one per page.
    ///
    /// Pages are fetched one after the other (each waits for the previous one's next link); each
    /// page is a whole request of its own, under the limits, rate and retries of every other.
    /// Returns early if the receiver is gone.
    pub async fn run(&self, i: u64, input: Input, out: &mpsc::Sender<Record>) {
        let spec = match (&self.config.paginate, input) {
            (Some(_), Input::Request(spec)) => (*spec, 0),
            (Some(_), Input::Page { spec, page }) => (*spec, page),
            (_, input) => {
                _ = out.send(self.execute(i, input).await.record).await;
                return;
            }
        };
        // Boxed, so that the walk's state (a second request future, the URLs fetched) is not part
        // of every request's task: a task is allocated and copied once per request and held by
        // each request in flight.
        Box::pin(self.walk(i, spec, out)).await;
    }

    /// The pages of input `i`, from `spec` (page `page`) on; see [`Engine::run`].
    async fn walk(&self, i: u64, (spec, page): (RequestSpec, u32), out: &mpsc::Sender<Record>) {
        let (mut walk, mut input) = Walk::start(spec, page, self.config.max_pages);
        loop {
            let Finished { record, next } = self.execute(i, input).await;
            if out.send(record).await.is_err() {
                return;
            }
            input = match walk.after(i, next) {
                NextPage::Fetch(input) => input,
                NextPage::Loop(record) => {
                    _ = out.send(*record).await;
                    return;
                }
                NextPage::End => return,
            };
        }
    }

    /// Runs one request to its end: exactly one record, whatever happens.
    ///
    /// Each attempt (with the redirects it follows) takes its turn from the limits and gives it
    /// back before any wait, so a request waiting to retry holds no permit.
    pub async fn execute(&self, i: u64, input: Input) -> Finished {
        let mut request = match Request::sharing(&self.config, &self.default_headers, i, input) {
            Ok(request) => request,
            Err(record) => return Finished { record: *record, next: None },
        };
        let mut event = Event::Start;
        // The origin of the hop, and the turn to send to it, between the steps that take and use them.
        let mut host: Option<Arc<Host>> = None;
        let mut turn: Option<Turn> = None;
        loop {
            let now = Instant::now();
            event = match request.step(event, now.into_std()) {
                Step::Turn { until } => {
                    let origin = host.insert(self.limits.host(&request.hop().url));
                    let granted = match until {
                        None => Some(self.limits.turn(origin).await),
                        Some(until) => {
                            tokio::time::timeout_at(until.into(), self.limits.turn(origin)).await.ok()
                        }
                    };
                    match granted {
                        Some(granted) => {
                            turn = Some(granted);
                            Event::Turn
                        }
                        None => Event::NoTurn,
                    }
                }
                Step::Authorize { until, refresh } => self.authorize(&request, until.into(), refresh).await,
                Step::Send { budget } => {
                    let mut wire = Wire::default();
                    let hop = request.outgoing();
                    let sent = tokio::time::timeout(budget, self.transport.exchange(&hop, &mut wire)).await;
                    drop(hop);
                    turn = None;
                    match sent {
                        Ok(outcome) => Event::Exchanged(outcome, wire),
                        Err(_) => Event::TimedOut(wire),
                    }
                }
                Step::Wait { until, cool_down } => {
                    if let (Some(host), Some(cool_down)) = (&host, cool_down) {
                        host.cool_down(cool_down.into());
                    }
                    tokio::time::sleep_until(until.into()).await;
                    Event::Waited
                }
                Step::Done { cool_down } => {
                    if let (Some(host), Some(cool_down)) = (&host, cool_down) {
                        host.cool_down(cool_down.into());
                    }
                    drop(turn);
                    return request.finish(now.into_std());
                }
            };
        }
    }
}

impl<T: Exchange> Engine<T> {
    /// The credentials of `request`'s hop, by `until` (the request's deadline), holding its turn.
    async fn authorize(&self, request: &Request<'_>, until: Instant, refresh: bool) -> Event {
        let Some(auth) = &self.auth else { return Event::Authorized(None) };
        let via = Via { transport: &self.transport, config: &self.config };
        let refused = if refresh { request.credentials() } else { None };
        let credentials = auth.credentials(&request.hop().url, refused, &via);
        match tokio::time::timeout_at(until, credentials).await {
            Ok(Ok(credentials)) => Event::Authorized(credentials),
            Ok(Err(e)) => Event::AuthFailed(Failure::new(ErrorKind::Auth, e.to_string())),
            Err(_) => Event::AuthFailed(Failure::new(
                ErrorKind::Timeout,
                format!(
                    "the --deadline of {:?} for this request passed while it waited for credentials",
                    self.config.deadline
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests;

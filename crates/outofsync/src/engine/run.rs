//! The engine's async driver: [`Engine`] runs each input's requests — one, or one per page — to
//! their records, carrying out what the request [`machine`](super::machine) decides: turns from
//! the limits, exchanges on the transport, waits on tokio's clock.

use std::sync::Arc;

use http::HeaderMap;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::adaptive::Answer;
use super::authorize::{Authorizer, Via};
use super::children::{Kids, Kin};
use super::conditional;
use super::config::Config;
use super::exchange::{Exchange, Wire};
use super::failure::Failure;
use super::limits::{Host, Limits, Turn};
use super::machine::{Event, Finished, NextPage, Request, Step, Walk};
use super::transport::Transport;
use crate::record::{ErrorKind, Parent, Record};
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
    /// Runs input number `i` to its end and hands over its records: one, or one per page, each
    /// followed by its children's (`--then`).
    ///
    /// Pages are fetched one after the other (each waits for the previous one's next link); each
    /// page is a whole request of its own, under the limits, rate and retries of every other.
    /// Returns early if the receiver is gone.
    #[cfg(test)]
    pub async fn run(&self, i: u64, input: Input, out: &mpsc::Sender<Record>) {
        self.run_with(i, input, out, &Kin::default()).await;
    }

    /// [`Engine::run`], with the children of the run's records run as `kin` says, and first the
    /// children of input `i` that a resume left to run.
    pub async fn run_with(&self, i: u64, input: Input, out: &mpsc::Sender<Record>, kin: &Kin) {
        if self.config.then.is_some() && self.resumed_children(i, &kin.resumed, &kin.kids, out).await {
            return;
        }
        self.records(i, input, out, None, Some(&kin.kids)).await;
    }

    /// The records of input `i`, or of a child of `parent`: one, or one per page; with `kids`,
    /// each page's children right after it.
    pub(crate) async fn records(
        &self,
        i: u64,
        input: Input,
        out: &mpsc::Sender<Record>,
        parent: Option<Parent>,
        kids: Option<&Kids>,
    ) {
        // Not a match on (paginate, input) that awaits in an arm: the scrutinee, a tuple, would
        // stay in every request's future.
        let spec = match input {
            Input::Request(spec) if self.config.paginate.is_some() => (*spec, 0),
            Input::Page { spec, page } if self.config.paginate.is_some() => (*spec, page),
            _ => {
                let record = self.execute_as(i, input, self.conditional(parent)).await.record;
                self.hand_on(record, parent, kids, out).await;
                return;
            }
        };
        // Boxed, so that the walk's state (a second request future, the URLs fetched) is not part
        // of every request's task: a task is allocated and copied once per request and held by
        // each request in flight.
        Box::pin(self.walk(i, spec, out, parent, kids)).await;
    }

    /// The pages of input `i`, from `spec` (page `page`) on; see [`Engine::run`].
    async fn walk(
        &self,
        i: u64,
        (spec, page): (RequestSpec, u32),
        out: &mpsc::Sender<Record>,
        parent: Option<Parent>,
        kids: Option<&Kids>,
    ) {
        let (mut walk, mut input) = Walk::start(spec, page, self.config.max_pages);
        loop {
            let Finished { record, next, .. } = self.execute_as(i, input, self.conditional(parent)).await;
            if !self.hand_on(record, parent, kids, out).await {
                return;
            }
            input = match walk.after(i, next) {
                NextPage::Fetch(input) => input,
                NextPage::Loop(mut record) => {
                    record.parent = parent;
                    _ = out.send(*record).await;
                    return;
                }
                NextPage::End => return,
            };
        }
    }

    /// Hands `record` on (stamped with its `parent`), then, with `kids`, runs its children;
    /// false if the receiver is gone.
    async fn hand_on(
        &self,
        mut record: Record,
        parent: Option<Parent>,
        kids: Option<&Kids>,
        out: &mpsc::Sender<Record>,
    ) -> bool {
        record.parent = parent;
        let family = kids.and_then(|_| self.family(&mut record));
        if out.send(record).await.is_err() {
            return false;
        }
        if let (Some(family), Some(kids)) = (family, kids) {
            self.children(family, kids, out).await;
        }
        true
    }

    /// Runs one request to its end: exactly one record, whatever happens.
    ///
    /// Each attempt (with the redirects it follows) takes its turn from the limits and gives it
    /// back before any wait, so a request waiting to retry holds no permit.
    pub async fn execute(&self, i: u64, input: Input) -> Finished {
        self.execute_as(i, input, true).await
    }

    /// Whether a request of `parent` (`None`: of the run's input) is sent with its validators:
    /// not a parent of `--then`, whose body (which a 304 lacks) gives its children.
    fn conditional(&self, parent: Option<Parent>) -> bool {
        parent.is_some() || self.config.then.is_none()
    }

    /// [`Engine::execute`], sent with its validators (if the config keeps them) only if
    /// `conditional`.
    async fn execute_as(&self, i: u64, input: Input, conditional: bool) -> Finished {
        let mut request = match Request::sharing(&self.config, &self.default_headers, i, input) {
            Ok(request) => request,
            Err(record) => return Finished { record: *record, next: None, validators: None },
        };
        // Conditional requests: the validators kept for the request, looked up before it is sent;
        // the ones to keep are handed back once it ends, if they changed.
        let store = self.config.validators.as_ref().filter(|_| conditional);
        // Boxed, as it is held while the request waits and most requests have none.
        let conditional = store.map(|store| {
            let key = conditional::key(request.hop());
            let sent = store.get(&key);
            if let Some(sent) = &sent {
                request.condition(sent.clone());
            }
            Box::new((store, key, sent))
        });
        let mut event = Event::Start;
        // The origin of the hop, and the turn to send to it, between the steps that take and use them.
        let mut host: Option<Arc<Host>> = None;
        let mut turn: Option<Turn> = None;
        loop {
            let now = Instant::now();
            event = match request.step(event, now.into_std()) {
                Step::Turn { until } => {
                    let url = &request.hop().url;
                    let origin = host.insert(self.limits.host(url));
                    let granted = match until {
                        None => Some(self.limits.turn(origin, url).await),
                        Some(until) => {
                            tokio::time::timeout_at(until.into(), self.limits.turn(origin, url)).await.ok()
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
                    let sent_at = Instant::now();
                    let sent = tokio::time::timeout(budget, self.transport.exchange(&hop, &mut wire)).await;
                    drop(hop);
                    // The host's controllers learn from every attempt, on its own: its latency is
                    // the exchange's alone, never a backoff or a wait for a turn.
                    if let Some(origin) = &host {
                        origin.observe(sent_at, Answer::of(&sent));
                    }
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
                    let finished = request.finish(now.into_std());
                    if let (Some(conditional), Some(keep)) = (&conditional, &finished.validators)
                        && let (store, key, sent) = &**conditional
                        && sent.as_ref() != Some(keep)
                        && !(sent.is_none() && keep.is_empty())
                    {
                        store.put(key, keep);
                    }
                    return finished;
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

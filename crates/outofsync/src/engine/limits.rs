//! Who may send now: the global concurrency limit, per-host limits, rate pacing, budgets, host
//! cooldowns, and what each host's controllers learned (its pace and, with `--adaptive`, its
//! window; see the `adaptive` module).
//!
//! A request asks for its turn right before each attempt and gives it back right after, so a
//! request that waits for a retry (or for a cooldown) holds no permit.
//!
//! The order of waiting — cooldown, the budgets, the host's pace, its learned pace and window, the
//! host permit, the global pace, the global permit — is chosen so that a request never idles holding something another request could use
//! meanwhile: the host's pace queue and permit are of use only to requests to the same host, which
//! would have to go after this one anyway, and the global pace queue only to requests that would
//! have to take the next global cell after it. Pace cells are spent last, at the moment the turn
//! is granted, so requests that queued for permits cannot go out in a burst once permits free up.

use foldhash::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use url::{Position, Url};

use super::adaptive::{Answer, Flight, HostCtl, HostReport, Shared};
use super::budget::{BudgetGate, Scope};
use super::config::{Config, Rate};
use super::rate::Pacer;
use super::shared::{FleetTurn, SharedLimits};

/// Hosts tracked before idle ones are forgotten.
const HOSTS_KEPT: usize = 4096;

/// Limits shared by every request of one fetcher.
pub(crate) struct Limits {
    global: Arc<Semaphore>,
    global_pace: Option<Pacer>,
    per_host: Option<usize>,
    rate: Option<Rate>,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    /// What every host's controllers share.
    controllers: Arc<Shared>,
    /// Budgets of matching requests, one state each, and budgets every host has its own of.
    matching: Vec<(super::budget::Budget, BudgetGate)>,
    each_host: Vec<super::budget::Budget>,
    /// Limits shared with other processes (`Config::shared_limits`).
    shared: Option<SharedLimits>,
}

/// The state of one origin (scheme, host, port).
pub(crate) struct Host {
    permits: Option<Arc<Semaphore>>,
    pace: Option<Pacer>,
    cooldown: Mutex<Option<Instant>>,
    /// What the host's answers taught: its pace, and its window under `--adaptive`.
    ctl: Arc<HostCtl>,
    /// Its own state of each per-host budget (`--rate 10/s,5000/h`).
    budgets: Vec<BudgetGate>,
    /// The fleet's limits and this origin's key in them.
    shared: Option<(SharedLimits, Box<str>)>,
}

/// The right to send one attempt; dropping it gives the slot back.
pub(crate) struct Turn {
    _global: OwnedSemaphorePermit,
    _host: Option<OwnedSemaphorePermit>,
    _flight: Flight,
    _fleet: Option<FleetTurn>,
}

impl Limits {
    pub fn new(config: &Config) -> Self {
        Self {
            global: Arc::new(Semaphore::new(config.concurrency.max(1))),
            global_pace: config.global_rate.map(Pacer::new),
            per_host: config.per_host.map(|n| n.max(1)),
            rate: config.rate,
            hosts: Mutex::new(HashMap::default()),
            controllers: Arc::new(Shared {
                knobs: config.adaptive.clone().unwrap_or_default(),
                adaptive: config.adaptive.is_some(),
                window_ceiling: config.per_host.unwrap_or(usize::MAX).min(config.concurrency).max(1),
                rate_ceiling: config.rate.map(|r| f64::from(r.count) / r.per.as_secs_f64()),
                max_pause: config.retry.max_retry_after,
                log: config.adaptive_log.clone(),
                started: Instant::now(),
            }),
            matching: config
                .budgets
                .iter()
                .filter(|b| b.scope != Scope::EachHost)
                .map(|b| (b.clone(), BudgetGate::new(b)))
                .collect(),
            each_host: config.budgets.iter().filter(|b| b.scope == Scope::EachHost).cloned().collect(),
            shared: config.shared_limits.clone(),
        }
    }

    /// Every host tracked, as its controllers see it.
    pub fn reports(&self) -> Vec<HostReport> {
        let hosts: Vec<Arc<Host>> = self.hosts.lock().unwrap().values().cloned().collect();
        hosts.iter().map(|h| h.ctl.report()).collect()
    }

    /// The state of the origin of `url`.
    pub fn host(&self, url: &Url) -> Arc<Host> {
        // The origin is the URL's own text up to its port (a default port is never written), so
        // the common lookup allocates nothing; credentials in the URL are left out of the key.
        let owned;
        let key = if url.username().is_empty() && url.password().is_none() {
            &url[..Position::AfterPort]
        } else {
            owned = format!("{}://{}", url.scheme(), &url[Position::BeforeHost..Position::AfterPort]);
            &owned
        };
        let mut hosts = self.hosts.lock().unwrap();
        if let Some(host) = hosts.get(key) {
            return host.clone();
        }
        if hosts.len() >= HOSTS_KEPT {
            // Forget hosts nobody is using and that are not cooling down; the map stays bounded
            // however many hosts an input names.
            let now = Instant::now();
            hosts.retain(|_, h| Arc::strong_count(h) > 1 || h.cooling_until().is_some_and(|t| t > now));
        }
        let host = Arc::new(Host {
            permits: self.per_host.map(|n| Arc::new(Semaphore::new(n))),
            pace: self.rate.map(Pacer::new),
            cooldown: Mutex::new(None),
            ctl: Arc::new(HostCtl::new(key, self.controllers.clone())),
            budgets: self.each_host.iter().map(BudgetGate::new).collect(),
            shared: self.shared.clone().map(|shared| (shared, key.into())),
        });
        hosts.insert(key.to_owned(), host.clone());
        host
    }

    /// Waits for this request's turn to send to `url` on `host`.
    pub async fn turn(&self, host: &Host, url: &Url) -> Turn {
        loop {
            host.wait_cooldown().await;
            let mut budget_slots = Vec::new();
            for (_, gate) in self.matching.iter().filter(|(budget, _)| budget.covers(url)) {
                budget_slots.push(gate.slot().await);
            }
            for gate in &host.budgets {
                budget_slots.push(gate.slot().await);
            }
            let host_slot = match &host.pace {
                Some(pace) => Some(pace.slot().await),
                None => None,
            };
            let learned = host.ctl.admit().await;
            let elsewhere = host.ctl.waiting_elsewhere();
            let host_permit = match &host.permits {
                Some(permits) => Some(permits.clone().acquire_owned().await.expect("never closed")),
                None => None,
            };
            // The fleet's turn after this host's own limits and before the global ones: waiting
            // for it holds nothing that requests to other hosts could use.
            let fleet = match &host.shared {
                Some((shared, origin)) => Some(shared.get().turn(origin).await),
                None => None,
            };
            let global_slot = match &self.global_pace {
                Some(pace) => Some(pace.slot().await),
                None => None,
            };
            let global = self.global.clone().acquire_owned().await.expect("never closed");
            drop(elsewhere);
            // A cooldown may have begun while we queued, or the host may have become paced: give
            // everything back (no cell spent) and wait it out, or queue for the pace.
            if host.cooling_until().is_some_and(|t| t > Instant::now()) || learned.stale() {
                continue;
            }
            for slot in [host_slot, global_slot].into_iter().flatten() {
                slot.take();
            }
            budget_slots.into_iter().for_each(super::budget::BudgetSlot::take);
            return Turn { _global: global, _host: host_permit, _flight: learned.take(), _fleet: fleet };
        }
    }
}

impl Host {
    /// The server asked that nothing more be sent to this host before `until` (a `Retry-After`):
    /// a long wait holds every request to the host until then, and the host resumes paced; a short
    /// one is left to the host's learned pace (see `HostCtl::cool_down`).
    pub fn cool_down(&self, until: Instant) {
        if self.ctl.cool_down(Instant::now(), until) {
            self.hold(until);
        }
    }

    /// Tells the host's controllers how an attempt sent at `sent_at` ended now; holds the host if
    /// its answer says its quota is spent.
    pub fn observe(&self, sent_at: Instant, answer: Answer<'_>) {
        if let Some(until) = self.ctl.observe(sent_at, Instant::now(), answer) {
            self.hold(until);
        }
    }

    /// Holds every request to this host until `until` (a later cooldown wins).
    fn hold(&self, until: Instant) {
        let mut cooldown = self.cooldown.lock().unwrap();
        if cooldown.is_none_or(|t| t < until) {
            *cooldown = Some(until);
            if let Some((shared, origin)) = &self.shared {
                shared.get().cool_down(origin, until.saturating_duration_since(Instant::now()));
            }
        }
    }

    fn cooling_until(&self) -> Option<Instant> {
        *self.cooldown.lock().unwrap()
    }

    async fn wait_cooldown(&self) {
        while let Some(until) = self.cooling_until() {
            if until <= Instant::now() {
                break;
            }
            tokio::time::sleep_until(until).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_cooldown_holds_every_request_to_the_host_and_no_other() {
        let limits = Limits::new(&Config::default());
        let a = limits.host(&Url::parse("http://a.test/x").unwrap());
        let same = limits.host(&Url::parse("http://a.test:80/y").unwrap());
        let with_credentials = limits.host(&Url::parse("http://user:pw@a.test/z").unwrap());
        assert!(Arc::ptr_eq(&a, &with_credentials), "credentials are not part of the origin");
        let b = limits.host(&Url::parse("http://b.test/").unwrap());
        assert!(Arc::ptr_eq(&a, &same));
        let start = Instant::now();
        a.cool_down(start + Duration::from_secs(3));
        let url = Url::parse("http://a.test/").unwrap();
        drop(limits.turn(&b, &url).await);
        assert_eq!(start.elapsed(), Duration::ZERO);
        drop(limits.turn(&same, &url).await);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn per_host_permits_are_given_back_on_drop() {
        let config = Config { per_host: Some(1), ..Config::default() };
        let limits = Arc::new(Limits::new(&config));
        let host = limits.host(&Url::parse("http://a.test/").unwrap());
        let url = Url::parse("http://a.test/").unwrap();
        let first = limits.turn(&host, &url).await;
        let waiting = {
            let (limits, host, url) = (limits.clone(), host.clone(), url.clone());
            tokio::spawn(async move { limits.turn(&host, &url).await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap();
    }
}

//! Who may send now: the global concurrency limit, per-host limits, rate pacing and host cooldowns.
//!
//! A request asks for its turn right before each attempt and gives it back right after, so a
//! request that waits for a retry (or for a cooldown) holds no permit.
//!
//! The order of waiting — cooldown, the host's pace, the host permit, the global pace, the global
//! permit — is chosen so that a request never idles holding something another request could use
//! meanwhile: the host's pace queue and permit are of use only to requests to the same host, which
//! would have to go after this one anyway, and the global pace queue only to requests that would
//! have to take the next global cell after it. Pace cells are spent last, at the moment the turn
//! is granted, so requests that queued for permits cannot go out in a burst once permits free up.

use foldhash::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use url::{Position, Url};

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
    /// Limits shared with other processes (`Config::shared_limits`).
    shared: Option<SharedLimits>,
}

/// The state of one origin (scheme, host, port).
pub(crate) struct Host {
    permits: Option<Arc<Semaphore>>,
    pace: Option<Pacer>,
    cooldown: Mutex<Option<Instant>>,
    /// The fleet's limits and this origin's key in them.
    shared: Option<(SharedLimits, Box<str>)>,
}

/// The right to send one attempt; dropping it gives the slot back.
pub(crate) struct Turn {
    _global: OwnedSemaphorePermit,
    _host: Option<OwnedSemaphorePermit>,
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
            shared: config.shared_limits.clone(),
        }
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
            shared: self.shared.clone().map(|shared| (shared, key.into())),
        });
        hosts.insert(key.to_owned(), host.clone());
        host
    }

    /// Waits for this request's turn to send to `host`.
    pub async fn turn(&self, host: &Host) -> Turn {
        loop {
            host.wait_cooldown().await;
            let host_slot = match &host.pace {
                Some(pace) => Some(pace.slot().await),
                None => None,
            };
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
            // A cooldown may have begun while we queued: give everything back (no cell spent)
            // and wait it out.
            if host.cooling_until().is_some_and(|t| t > Instant::now()) {
                continue;
            }
            for slot in [host_slot, global_slot].into_iter().flatten() {
                slot.take();
            }
            return Turn { _global: global, _host: host_permit, _fleet: fleet };
        }
    }
}

impl Host {
    /// Holds every request to this host until `until` (a later cooldown wins).
    pub fn cool_down(&self, until: Instant) {
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
        drop(limits.turn(&b).await);
        assert_eq!(start.elapsed(), Duration::ZERO);
        drop(limits.turn(&same).await);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn per_host_permits_are_given_back_on_drop() {
        let config = Config { per_host: Some(1), ..Config::default() };
        let limits = Arc::new(Limits::new(&config));
        let host = limits.host(&Url::parse("http://a.test/").unwrap());
        let first = limits.turn(&host).await;
        let waiting = {
            let (limits, host) = (limits.clone(), host.clone());
            tokio::spawn(async move { limits.turn(&host).await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap();
    }
}

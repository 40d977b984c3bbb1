//! Budgets beyond one `--rate` per host: several windows at once (`--rate 10/s,5000/h`) and
//! budgets scoped to a host and a path (`--rate 'api.example.com/search*=30/m'`), as Airbyte's
//! `api_budget` offers in configuration.
//!
//! In a budget, the shortest window paces evenly (one request every 1/N, as a single `--rate`
//! always has), and each longer one is a *count*: at most N requests in any span of its length,
//! however they bunch up inside it. So `10/s,5000/h` goes at 10 a second until 5,000 have gone
//! within the hour, then waits for the oldest of them to leave the hour.
//!
//! A count keeps its window in 64 slices rather than a timestamp per request (5,000/h would be
//! 5,000 instants per host): a request counts until its slice has left the window, so a window is
//! at most 1/64 longer than stated, never shorter — a budget is never exceeded.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};
use tokio::time::Instant;
use url::Url;

use super::config::Rate;

/// Slices per counted window.
const SLICES: u32 = 64;

/// A budget: which requests it covers, and its windows.
///
/// # Examples
///
/// ```
/// use outofsync::engine::Budget;
///
/// let search: Budget = "api.example.com/search*=30/m".parse()?;
/// assert_eq!(search.to_string(), "api.example.com/search*=30/m");
/// let both: Budget = "10/s,5000/h".parse()?;
/// assert_eq!(both.rates.len(), 2);
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The requests it covers.
    pub scope: Scope,
    /// Its windows, shortest first: the shortest paces, the others count.
    pub rates: Vec<Rate>,
}

/// Which requests a [`Budget`] covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every request, each host with a budget of its own (as `--rate`).
    EachHost,
    /// Requests whose host (and port, if given) and path match: one budget shared by them all.
    Matching {
        /// The host name, lower case; `*` matches any run of characters (`*.example.com`).
        host: String,
        /// The port, when the pattern names one.
        port: Option<u16>,
        /// The path, from its `/`; `*` matches any run of characters (`/search*`). `None`: any.
        path: Option<String>,
    },
}

impl Budget {
    /// Whether a request to `url` counts against this budget.
    pub fn covers(&self, url: &Url) -> bool {
        match &self.scope {
            Scope::EachHost => true,
            Scope::Matching { host, port, path } => {
                let host_matches = url.host_str().is_some_and(|h| glob(host, &h.to_ascii_lowercase()));
                let port_matches = port.is_none_or(|p| url.port_or_known_default() == Some(p));
                host_matches && port_matches && path.as_ref().is_none_or(|p| glob(p, url.path()))
            }
        }
    }
}

impl FromStr for Budget {
    type Err = String;

    /// `[HOST[:PORT][/PATH]=]RATE[,RATE…]`, each RATE `N/s`, `N/m`, `N/h` or `N`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (pattern, rates) = match s.rsplit_once('=') {
            Some((pattern, rates)) => (Some(pattern.trim()), rates),
            None => (None, s),
        };
        let mut rates = rates
            .split(',')
            .map(|r| r.parse::<Rate>().map_err(|e| format!("--rate {s:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        rates.sort_by_key(|r| r.per);
        for pair in rates.windows(2) {
            if pair[0].per == pair[1].per {
                return Err(format!("--rate {s:?}: two rates per {:?}", pair[0].per));
            }
        }
        let scope = match pattern {
            None => Scope::EachHost,
            Some(pattern) => {
                let (authority, path) = match pattern.find('/') {
                    Some(at) => (&pattern[..at], Some(pattern[at..].to_owned())),
                    None => (pattern, None),
                };
                let (host, port) = match authority.rsplit_once(':') {
                    Some((host, port)) => (
                        host,
                        Some(port.parse::<u16>().map_err(|_| format!("--rate {s:?}: bad port {port:?}"))?),
                    ),
                    None => (authority, None),
                };
                if host.is_empty() || host.contains("://") {
                    return Err(format!(
                        "--rate {s:?}: expected HOST[:PORT][/PATH]=RATE (no scheme), e.g. api.example.com/search*=30/m"
                    ));
                }
                Scope::Matching { host: host.to_ascii_lowercase(), port, path }
            }
        };
        Ok(Budget { scope, rates })
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Scope::Matching { host, port, path } = &self.scope {
            write!(f, "{host}")?;
            if let Some(port) = port {
                write!(f, ":{port}")?;
            }
            write!(f, "{}=", path.as_deref().unwrap_or(""))?;
        }
        let rates: Vec<String> = self.rates.iter().map(Rate::to_string).collect();
        f.write_str(&rates.join(","))
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A budget's state: the pace of its shortest window and the counts of the others.
#[derive(Debug)]
pub(crate) struct BudgetGate {
    state: Mutex<Windows>,
}

#[derive(Debug)]
struct Windows {
    /// The shortest window's pace: one every `interval`, the next at `next`.
    interval: Duration,
    next: Option<Instant>,
    counts: Vec<Count>,
}

/// At most `limit` requests in any span of `period`, kept in slices.
#[derive(Debug)]
struct Count {
    limit: u32,
    period: Duration,
    slice: Duration,
    origin: Instant,
    /// (slice number, requests in it), oldest first.
    slices: VecDeque<(u64, u32)>,
    total: u32,
}

/// The head of a budget's queue, until the request goes (or gives up its place).
#[derive(Debug)]
pub(crate) struct BudgetSlot<'a> {
    state: MutexGuard<'a, Windows>,
}

impl BudgetGate {
    pub fn new(budget: &Budget) -> Self {
        let now = Instant::now();
        let interval = budget.rates.first().map_or(Duration::ZERO, Rate::interval);
        let counts = budget.rates.iter().skip(1).map(|rate| Count::new(*rate, now)).collect();
        Self { state: Mutex::new(Windows { interval, next: None, counts }) }
    }

    /// Waits, in arrival order, until the budget lets one more request go.
    pub async fn slot(&self) -> BudgetSlot<'_> {
        let mut state = self.state.lock().await;
        loop {
            let now = Instant::now();
            let next = state.next;
            let earliest = state.counts.iter_mut().map(|c| c.earliest(now)).chain(next).max();
            match earliest {
                Some(at) if at > now => tokio::time::sleep_until(at).await,
                _ => break,
            }
        }
        BudgetSlot { state }
    }
}

impl BudgetSlot<'_> {
    /// Spends the slot now.
    pub fn take(mut self) {
        let now = Instant::now();
        self.state.next = Some(now + self.state.interval);
        for count in &mut self.state.counts {
            count.add(now);
        }
    }
}

impl Count {
    fn new(rate: Rate, origin: Instant) -> Self {
        let slice = (rate.per / SLICES).max(Duration::from_millis(1));
        Self { limit: rate.count, period: rate.per, slice, origin, slices: VecDeque::new(), total: 0 }
    }

    fn number(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.origin).as_nanos() / self.slice.as_nanos()) as u64
    }

    /// When the slice numbered `n` has wholly left the window.
    fn leaves(&self, n: u64) -> Instant {
        self.origin + self.slice * (n + 1) as u32 + self.period
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(n, k)) = self.slices.front() {
            if self.leaves(n) > now {
                break;
            }
            self.slices.pop_front();
            self.total -= k;
        }
    }

    /// The earliest instant one more request fits.
    fn earliest(&mut self, now: Instant) -> Instant {
        self.expire(now);
        let mut over = (self.total + 1).saturating_sub(self.limit);
        if over == 0 {
            return now;
        }
        for &(n, k) in &self.slices {
            if over <= k {
                return self.leaves(n);
            }
            over -= k;
        }
        now
    }

    fn add(&mut self, now: Instant) {
        self.expire(now);
        let n = self.number(now);
        match self.slices.back_mut() {
            Some((last, k)) if *last == n => *k += 1,
            _ => self.slices.push_back((n, 1)),
        }
        self.total += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse_print_and_match() {
        let b: Budget = "API.example.com/search*=30/m".parse().unwrap();
        assert_eq!(b.to_string(), "api.example.com/search*=30/m");
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(b.covers(&url("https://api.example.com/search?q=1")));
        assert!(b.covers(&url("http://api.example.com/search/deep")));
        assert!(!b.covers(&url("https://api.example.com/users")));
        assert!(!b.covers(&url("https://other.example.com/search")));
        let b: Budget = "*.example.com:8443=5/s".parse().unwrap();
        assert!(b.covers(&url("https://a.example.com:8443/x")) && !b.covers(&url("https://a.example.com/x")));
        let b: Budget = "5000/h,10/s".parse().unwrap();
        assert_eq!(
            (b.scope.clone(), b.to_string()),
            (Scope::EachHost, "10/s,5000/h".to_owned()),
            "shortest first"
        );
        assert!(b.covers(&url("http://anything.test/")));
        for bad in ["x=0/s", "https://a.test/x=1/s", "a.test:http=1/s", "1/s,2/s", "a.test=", ""] {
            assert!(bad.parse::<Budget>().is_err(), "{bad}");
        }
        assert!(
            glob("/a*b*c", "/axxbyyc") && !glob("/a*b*c", "/axxbyy") && glob("*", "") && !glob("/a", "/ab")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_shortest_window_paces_and_the_longer_ones_count() {
        let gate = BudgetGate::new(&"10/s,25/m".parse().unwrap());
        let start = Instant::now();
        let mut sent = Vec::new();
        for _ in 0..30 {
            gate.slot().await.take();
            sent.push(start.elapsed());
        }
        // 25 paced 100 ms apart, then the minute's budget is spent: the 26th waits until the
        // first has left the minute (one slice of 60/64 s later at most).
        assert_eq!(sent[24], Duration::from_millis(2400));
        let first_again = sent[25];
        assert!(
            first_again >= Duration::from_secs(60)
                && first_again <= Duration::from_secs(60) + Duration::from_millis(940),
            "{first_again:?}"
        );
        for pair in sent.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(100));
        }
        // In any minute, never more than 25.
        for (i, at) in sent.iter().enumerate() {
            let within = sent[i..].iter().filter(|t| **t < *at + Duration::from_secs(60)).count();
            assert!(within <= 25, "{within} in the minute from {at:?}");
        }
    }
}

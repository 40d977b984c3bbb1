//! The knobs of `--adaptive` (`--adaptive-opt k=v,…`) and their defaults.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The knobs of `--adaptive` (`--adaptive-opt k=v,…`), each with its default.
///
/// # Examples
///
/// ```
/// use outofsync::engine::AdaptiveConfig;
///
/// let knobs: AdaptiveConfig = "init=8,tol=0.3".parse()?;
/// assert_eq!((knobs.init, knobs.tol, knobs.beta_r), (8.0, 0.3, 0.9));
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptiveConfig {
    /// What drives the window: [`AdaptiveMode::Gradient`] (latency against a probed baseline,
    /// with a learned rate) or [`AdaptiveMode::Window`] (a plain AIMD window, for comparison).
    /// Default: gradient.
    pub mode: AdaptiveMode,
    /// The window each host starts with. Default: 4.
    pub init: f64,
    /// Latency tolerated over the baseline: the window settles where p50 = (1 + tol) × base.
    /// Default: 0.5.
    pub tol: f64,
    /// The exponent of each window step (1 is undamped). Default: 0.5.
    pub gain: f64,
    /// The window's cut on overload, once per epoch. Default: 0.8.
    pub beta_w: f64,
    /// The rate's cut on throttling, once per epoch (0.95 once the rate has converged). Default: 0.9.
    pub beta_r: f64,
    /// The time the rate takes to grow back to where it was cut (CUBIC's K) before it has
    /// converged. Default: 2 s.
    pub k: Duration,
    /// The time between latency probes (±15 %). Default: 30 s.
    pub probe: Duration,
    /// A `Retry-After` above this pauses the whole host; a shorter one delays only its request.
    /// Default: 2 s.
    pub pause: Duration,
    /// The lowest rate, per second. Default: 0.2.
    pub min_rate: f64,
    /// The burst the learned pace allows, in seconds of its rate (at least one request).
    /// Default: 100 ms.
    pub burst: Duration,
}

/// What drives a host's window under `--adaptive`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AdaptiveMode {
    /// Latency against a probed baseline for the window, throttling for a learned rate.
    #[default]
    Gradient,
    /// A plain AIMD window: +1 per interval, ×0.9 on any throttle or overload; no learned rate.
    Window,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            mode: AdaptiveMode::Gradient,
            init: 4.0,
            tol: 0.5,
            gain: 0.5,
            beta_w: 0.8,
            beta_r: 0.9,
            k: Duration::from_secs(2),
            probe: Duration::from_secs(30),
            pause: Duration::from_secs(2),
            min_rate: 0.2,
            burst: Duration::from_millis(100),
        }
    }
}

impl AdaptiveConfig {
    /// The knobs `--adaptive-opt` takes, with their defaults, as `--help` shows them.
    pub const HELP: &'static str = "mode=gradient (or window: plain AIMD), init=4, tol=0.5, gain=0.5, \
        beta_w=0.8, beta_r=0.9, k=2s, probe=30s, pause=2s, min_rate=0.2, burst=100ms";

    /// Sets the knob `key` from its text.
    ///
    /// # Errors
    /// An unknown knob, or a value that does not parse or is out of range.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let number = || -> Result<f64, String> {
            value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("{key}={value}: not a number"))
        };
        let duration = || humantime::parse_duration(value.trim()).map_err(|e| format!("{key}={value}: {e}"));
        match key.trim() {
            "mode" => {
                self.mode = match value.trim() {
                    "gradient" => AdaptiveMode::Gradient,
                    "window" | "aimd" => AdaptiveMode::Window,
                    other => return Err(format!("mode={other}: use gradient or window")),
                }
            }
            "init" => self.init = number()?,
            "tol" => self.tol = number()?,
            "gain" => self.gain = number()?,
            "beta_w" => self.beta_w = number()?,
            "beta_r" => self.beta_r = number()?,
            "k" => self.k = duration()?,
            "probe" => self.probe = duration()?,
            "pause" => self.pause = duration()?,
            "min_rate" => self.min_rate = number()?,
            "burst" => self.burst = duration()?,
            other => return Err(format!("unknown --adaptive-opt {other:?} (known: {})", Self::HELP)),
        }
        self.check()
    }

    /// Checks every knob's range.
    ///
    /// # Errors
    /// The first knob out of range, named.
    pub fn check(&self) -> Result<(), String> {
        let within = |name: &str, v: f64, lo: f64, hi: f64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("--adaptive-opt {name}={v} is outside {lo}..={hi}"))
            }
        };
        within("init", self.init, 1.0, 1e6)?;
        within("tol", self.tol, 0.0, 10.0)?;
        within("gain", self.gain, 0.01, 1.0)?;
        within("beta_w", self.beta_w, 0.1, 0.99)?;
        within("beta_r", self.beta_r, 0.1, 0.99)?;
        within("min_rate", self.min_rate, 0.001, 1e6)?;
        for (name, d) in [("k", self.k), ("probe", self.probe)] {
            if d.is_zero() {
                return Err(format!("--adaptive-opt {name} must be longer than 0"));
            }
        }
        Ok(())
    }
}

impl FromStr for AdaptiveConfig {
    type Err = String;

    /// `k=v,k=v`, applied to the defaults.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut knobs = AdaptiveConfig::default();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) =
                pair.split_once('=').ok_or_else(|| format!("--adaptive-opt {pair:?}: expected KEY=VALUE"))?;
            knobs.set(key, value)?;
        }
        Ok(knobs)
    }
}

impl fmt::Display for AdaptiveConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: Duration| humantime::format_duration(d).to_string();
        let mode = match self.mode {
            AdaptiveMode::Gradient => "gradient",
            AdaptiveMode::Window => "window",
        };
        write!(
            f,
            "mode={mode},init={},tol={},gain={},beta_w={},beta_r={},k={},probe={},pause={},min_rate={},burst={}",
            self.init,
            self.tol,
            self.gain,
            self.beta_w,
            self.beta_r,
            d(self.k),
            d(self.probe),
            d(self.pause),
            self.min_rate,
            d(self.burst)
        )
    }
}

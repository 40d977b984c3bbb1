//! Values of flags that the library types do not parse or show the way people write them:
//! durations (`10s`, `500ms`) and sizes (`32MiB`). Each shows itself as it parses, so that
//! `--help` prints the library's own defaults (`default_value_t`), never a copy of them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration as people write it: `10s`, `500ms`, `2m`, `1h 30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

/// In seconds or milliseconds when it is a whole number of them (`120s`, `500ms`), as timeouts
/// are usually written (and as curl takes them), else as humantime writes it.
impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{}s", d.as_secs())
        } else if d.subsec_nanos().is_multiple_of(1_000_000) {
            write!(f, "{}ms", d.as_millis())
        } else {
            humantime::format_duration(d).fmt(f)
        }
    }
}

impl FromStr for HumanDuration {
    type Err = humantime::DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s).map(HumanDuration)
    }
}

/// A size in bytes, with binary units: `32MiB`, `32M`, `500k`, `1000`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if n != 0 && n.trailing_zeros() >= shift {
                return write!(f, "{}{unit}", n >> shift);
            }
        }
        write!(f, "{n}")
    }
}

impl FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let n: u64 = digits.parse().map_err(|_| format!("size {s:?} must start with a number"))?;
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            other => return Err(format!("size {s:?} has an unknown unit {other:?} (use k, M or G)")),
        };
        n.checked_mul(1 << shift).map(Size).ok_or_else(|| format!("size {s:?} is too large"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_show_themselves_as_they_parse() {
        for text in ["10s", "500ms", "2m", "1h 30m"] {
            let d: HumanDuration = text.parse().unwrap();
            assert_eq!(d.to_string().parse::<HumanDuration>().unwrap(), d, "{text}");
        }
        assert_eq!(HumanDuration(Duration::from_secs(120)).to_string(), "120s");
        assert_eq!(HumanDuration(Duration::from_millis(1500)).to_string(), "1500ms");
        for (text, bytes, shown) in
            [("32MiB", 32 << 20, "32MiB"), ("500k", 500 << 10, "500KiB"), ("1000", 1000, "1000")]
        {
            let size: Size = text.parse().unwrap();
            assert_eq!((size.0, size.to_string().as_str()), (bytes, shown));
        }
        assert!("12 parsecs".parse::<Size>().is_err() && "k".parse::<Size>().is_err());
    }
}

//! [`CursorValue`]: what `--cursor` finds in a body — a timestamp or an id — compared as what it
//! means (timestamps as instants, whatever their offset; ids as numbers), moved back by a
//! lookback, and written into templates.

use std::cmp::Ordering;
use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// A cursor value: an instant written in RFC 3339, or a numeric id (a JSON number, or a string
/// of digits, as some APIs write ids).
#[derive(Clone, Debug)]
pub enum CursorValue {
    /// An RFC 3339 timestamp: the instant (seconds and nanoseconds since the Unix epoch) and the
    /// text as found, which is what is written back.
    Time {
        /// Seconds since 1970-01-01T00:00:00Z.
        secs: i64,
        /// Nanoseconds within the second.
        nanos: u32,
        /// The text as found.
        text: String,
    },
    /// A whole number id.
    Int(i128),
    /// A number with a fraction.
    Float(f64),
    /// A whole number written as a string (`"12345"`), kept as a string when written back.
    IntString(i128),
}

impl PartialEq for CursorValue {
    fn eq(&self, other: &Self) -> bool {
        self.partial_cmp(other) == Some(Ordering::Equal)
    }
}

impl PartialOrd for CursorValue {
    /// Timestamps by instant, numbers by value; a timestamp and a number do not compare.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        use CursorValue::{Int, IntString, Time};
        match (self, other) {
            (Time { secs: a, nanos: an, .. }, Time { secs: b, nanos: bn, .. }) => Some((a, an).cmp(&(b, bn))),
            (Time { .. }, _) | (_, Time { .. }) => None,
            (Int(a) | IntString(a), Int(b) | IntString(b)) => Some(a.cmp(b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }
}

impl CursorValue {
    /// The cursor value of a JSON value found by `--cursor`; `Ok(None)` for `null` (nothing
    /// found: an empty page).
    ///
    /// # Errors
    /// Anything but a number, an RFC 3339 timestamp or a string of digits, named.
    pub fn of_json(value: &Value) -> Result<Option<CursorValue>, String> {
        match value {
            Value::Null => Ok(None),
            Value::Number(n) => Ok(Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => CursorValue::Int(i.into()),
                (_, Some(u), _) => CursorValue::Int(u.into()),
                (_, _, Some(f)) => CursorValue::Float(f),
                _ => return Err(format!("{n} is not a number outofsync can compare")),
            })),
            Value::String(text) => CursorValue::parse(text).map(Some),
            other => Err(format!(
                "{} is neither a timestamp (RFC 3339) nor an id (a number)",
                crate::request::quote(&other.to_string())
            )),
        }
    }

    /// A value given as text (`--initial`, a state file): an RFC 3339 timestamp, or a number.
    ///
    /// # Errors
    /// Neither, named.
    pub fn parse(text: &str) -> Result<CursorValue, String> {
        if let Some((secs, nanos)) = rfc3339(text) {
            return Ok(CursorValue::Time { secs, nanos, text: text.to_owned() });
        }
        if !text.is_empty()
            && text.bytes().enumerate().all(|(n, b)| b.is_ascii_digit() || (n == 0 && b == b'-'))
            && let Ok(n) = text.parse::<i128>()
        {
            return Ok(CursorValue::IntString(n));
        }
        Err(format!(
            "{} is neither a timestamp (RFC 3339, such as 2026-01-01T00:00:00Z) nor an id (a number)",
            crate::request::quote(text)
        ))
    }

    /// A number given as text (`--initial 0`) is a number, not a string of digits.
    pub fn parse_initial(text: &str) -> Result<CursorValue, String> {
        match CursorValue::parse(text)? {
            CursorValue::IntString(n) => Ok(CursorValue::Int(n)),
            other => Ok(other),
        }
    }

    fn as_f64(&self) -> f64 {
        match self {
            CursorValue::Int(n) | CursorValue::IntString(n) => *n as f64,
            CursorValue::Float(f) => *f,
            CursorValue::Time { secs, nanos, .. } => *secs as f64 + f64::from(*nanos) / 1e9,
        }
    }

    /// Whether it is a timestamp.
    pub fn is_time(&self) -> bool {
        matches!(self, CursorValue::Time { .. })
    }

    /// The value `back` earlier (`--lookback`), written in UTC (`Z`).
    ///
    /// # Errors
    /// The value is not a timestamp.
    pub fn minus_duration(&self, back: Duration) -> Result<CursorValue, String> {
        let CursorValue::Time { secs, nanos, .. } = self else {
            return Err(format!(
                "--lookback takes a duration off a timestamp; the cursor {self} is an id (use --lookback-n)"
            ));
        };
        let total = i128::from(*secs) * 1_000_000_000 + i128::from(*nanos) - back.as_nanos() as i128;
        let (secs, nanos) = (total.div_euclid(1_000_000_000) as i64, total.rem_euclid(1_000_000_000) as u32);
        Ok(CursorValue::Time { secs, nanos, text: write_rfc3339(secs, nanos) })
    }

    /// The id `n` lower (`--lookback-n`).
    ///
    /// # Errors
    /// The value is a timestamp.
    pub fn minus_n(&self, n: u64) -> Result<CursorValue, String> {
        Ok(match self {
            CursorValue::Int(v) => CursorValue::Int(v - i128::from(n)),
            CursorValue::IntString(v) => CursorValue::IntString(v - i128::from(n)),
            CursorValue::Float(f) => CursorValue::Float(f - n as f64),
            CursorValue::Time { .. } => {
                return Err(format!(
                    "--lookback-n takes a count off an id; the cursor {self} is a timestamp (use --lookback)"
                ));
            }
        })
    }

    /// The value as JSON: a string for timestamps and ids found as strings, else a number.
    pub fn to_json(&self) -> Value {
        match self {
            CursorValue::Time { text, .. } => Value::String(text.clone()),
            CursorValue::IntString(n) => Value::String(n.to_string()),
            CursorValue::Int(n) => serde_json::from_str(&n.to_string()).unwrap_or(Value::Null),
            CursorValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        }
    }
}

impl fmt::Display for CursorValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CursorValue::Time { text, .. } => f.write_str(text),
            CursorValue::Int(n) | CursorValue::IntString(n) => write!(f, "{n}"),
            CursorValue::Float(x) => write!(f, "{x}"),
        }
    }
}

/// Seconds and nanoseconds since the epoch of an RFC 3339 timestamp: `YYYY-MM-DDTHH:MM:SS`, an
/// optional fraction, and `Z` or an offset `±HH:MM` (`t`, `z` and a space for `T` accepted).
pub fn rfc3339(text: &str) -> Option<(i64, u32)> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok())?
    };
    let (y, mo, d, h, mi, s) =
        (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        for (n, c) in frac[..digits.min(9)].bytes().enumerate() {
            nanos += u32::from(c - b'0') * 10u32.pow(8 - n as u32);
        }
        rest = &frac[digits..];
    }
    let offset = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [h1, h2, m1, m2];
            if !digits.iter().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let minutes =
                i64::from((h1 - b'0') * 10 + (h2 - b'0')) * 60 + i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if *sign == b'-' { -minutes * 60 } else { minutes * 60 }
        }
        _ => return None,
    };
    // A leap second (`:60`) is the first second of the next minute, as POSIX time counts it.
    let leap = i64::from(s == 60);
    let time = jiff::civil::Time::new(h as i8, mi as i8, (s - leap) as i8, 0).ok()?;
    let local = jiff::civil::Date::new(y as i16, mo as i8, d as i8).ok()?.to_datetime(time);
    let instant =
        jiff::tz::Offset::from_seconds(i32::try_from(offset).ok()?).ok()?.to_timestamp(local).ok()?;
    Some((instant.as_second() + leap, nanos))
}

/// An instant in RFC 3339, UTC (`Z`), with as many fraction digits as it needs.
pub fn write_rfc3339(secs: i64, nanos: u32) -> String {
    let nanos = i32::try_from(nanos).unwrap_or(999_999_999).min(999_999_999);
    // Beyond jiff's range (years ±9999), the nearest instant it can write.
    let instant = jiff::Timestamp::new(secs, nanos).unwrap_or(if secs < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    });
    // jiff's own display: UTC as `Z`, the fraction only as long as it needs to be.
    instant.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> CursorValue {
        CursorValue::parse(text).unwrap()
    }

    #[test]
    fn timestamps_compare_as_instants_whatever_their_offset() {
        // The string order says the opposite.
        assert!(v("2026-01-01T02:00:00+02:00") < v("2026-01-01T00:00:01Z"));
        assert_eq!(v("2026-01-01T02:00:00+02:00"), v("2026-01-01T00:00:00Z"));
        assert!(v("2025-12-31T19:00:00.5-05:00") > v("2026-01-01T00:00:00Z"));
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(rfc3339("2026-01-01T00:00:00.123Z"), Some((1_767_225_600, 123_000_000)));
        assert_eq!(rfc3339("2016-12-31T23:59:60Z"), rfc3339("2017-01-01T00:00:00Z"), "a leap second");
        assert_eq!(write_rfc3339(1_767_225_600, 0), "2026-01-01T00:00:00Z");
        assert_eq!(write_rfc3339(1_767_225_600, 120_000_000), "2026-01-01T00:00:00.12Z");
        assert_eq!(write_rfc3339(-1, 0), "1969-12-31T23:59:59Z");
        for bad in [
            "2026-01-01",
            "2026-01-01T00:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-01-01T00:00:00+2:00",
            "x",
        ] {
            assert_eq!(rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_compare_as_numbers_and_other_values_are_named() {
        let of = |j: Value| CursorValue::of_json(&j).unwrap().unwrap();
        assert!(of(serde_json::json!(9)) < of(serde_json::json!(10)));
        assert!(of(serde_json::json!("9")) < of(serde_json::json!("10")), "digits compare as numbers");
        assert!(of(serde_json::json!(9.5)) < of(serde_json::json!(10)));
        assert_eq!(
            of(serde_json::json!(18_446_744_073_709_551_615u64)).to_json(),
            serde_json::json!(18_446_744_073_709_551_615u64)
        );
        assert_eq!(of(serde_json::json!(10)).partial_cmp(&v("2026-01-01T00:00:00Z")), None);
        assert_eq!(CursorValue::of_json(&Value::Null).unwrap(), None);
        assert!(CursorValue::of_json(&serde_json::json!({"a": 1})).unwrap_err().contains("neither"));
        assert!(CursorValue::of_json(&serde_json::json!("soon")).unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn a_lookback_moves_a_timestamp_or_an_id_back_and_refuses_the_other() {
        let t = v("2026-01-01T02:00:00+02:00");
        assert_eq!(t.minus_duration(Duration::from_secs(5)).unwrap().to_string(), "2025-12-31T23:59:55Z");
        assert_eq!(
            t.minus_duration(Duration::from_millis(1500)).unwrap().to_string(),
            "2025-12-31T23:59:58.5Z"
        );
        assert!(t.minus_n(5).unwrap_err().contains("--lookback"));
        let id = CursorValue::parse_initial("100").unwrap();
        assert_eq!(id.minus_n(10).unwrap().to_json(), serde_json::json!(90));
        assert!(id.minus_duration(Duration::from_secs(1)).unwrap_err().contains("--lookback-n"));
        assert_eq!(v("42").to_json(), serde_json::json!("42"));
    }
}

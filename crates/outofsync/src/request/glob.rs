//! curl-style URL globs: `[1-100]`, `[001-100]` (zero-padded), `[a-z]`, `[0-100:10]` (a step) and
//! `{a,b,c}`, expanded lazily with the last pattern varying fastest, as curl does.
//!
//! A bracket that is not a range is kept as written, so IPv6 literals such as `http://[::1]:8080/`
//! need no escaping; `\[`, `\]`, `\{`, `\}` and `\,` are literal characters. A `[` or `{` that is
//! never closed is an error, as in curl.

/// A parsed glob: literal text and patterns, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Numbers { start: u64, end: u64, step: u64, width: usize },
    Letters { start: u8, end: u8, step: u8 },
    Set(Vec<String>),
}

impl Part {
    fn len(&self) -> u64 {
        match self {
            Part::Literal(_) => 1,
            Part::Numbers { start, end, step, .. } => (end - start) / step + 1,
            Part::Letters { start, end, step } => u64::from((end - start) / step) + 1,
            Part::Set(items) => items.len() as u64,
        }
    }

    fn push(&self, index: u64, out: &mut String) {
        match self {
            Part::Literal(s) => out.push_str(s),
            Part::Numbers { start, step, width, .. } => {
                let n = start + index * step;
                out.push_str(&format!("{n:0width$}"));
            }
            Part::Letters { start, step, .. } => out.push((start + index as u8 * step) as char),
            Part::Set(items) => out.push_str(&items[index as usize]),
        }
    }
}

impl Glob {
    /// Parses a pattern.
    ///
    /// # Errors
    /// A reversed range (`[9-1]`), a zero step, numbers too large, or a `[` or `{` that is not
    /// closed.
    pub fn parse(pattern: &str) -> Result<Glob, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = pattern;
        while let Some(c) = rest.chars().next() {
            match c {
                '\\' if rest.len() > 1 && matches!(rest.as_bytes()[1], b'[' | b']' | b'{' | b'}' | b',') => {
                    literal.push(rest.as_bytes()[1] as char);
                    rest = &rest[2..];
                }
                '[' => match rest.find(']').map(|end| (parse_range(&rest[1..end]), end)) {
                    Some((Some(range), end)) => {
                        let range = range?;
                        flush(&mut literal, &mut parts);
                        parts.push(range);
                        rest = &rest[end + 1..];
                    }
                    Some((None, _)) => {
                        literal.push('[');
                        rest = &rest[1..];
                    }
                    None => return Err(unterminated(pattern, rest, ']')),
                },
                '{' => match rest.find('}') {
                    Some(end) => {
                        let items: Vec<String> = rest[1..end].split(',').map(str::to_owned).collect();
                        flush(&mut literal, &mut parts);
                        parts.push(Part::Set(items));
                        rest = &rest[end + 1..];
                    }
                    None => return Err(unterminated(pattern, rest, '}')),
                },
                c => {
                    literal.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        flush(&mut literal, &mut parts);
        Ok(Glob { parts })
    }

    /// How many strings the glob expands to (saturating).
    pub fn len(&self) -> u64 {
        self.parts.iter().fold(1u64, |n, p| n.saturating_mul(p.len()))
    }

    /// Whether the glob expands to nothing (never: every part has at least one item).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The expansions, last pattern fastest.
    pub fn iter(&self) -> GlobIter {
        self.clone().into_iter()
    }
}

/// An opening bracket or brace with no closing one after it (`[1-`), as curl refuses it: sent as
/// it is, a half-typed range would fetch one wrong URL instead of the many meant.
fn unterminated(pattern: &str, rest: &str, close: char) -> String {
    let open = rest.chars().next().unwrap_or_default();
    let at = pattern.len() - rest.len();
    format!(
        "unterminated glob: the {open:?} at byte {at} has no {close:?} after it (close it, escape it \
         as \\{open}, or give -g/--globoff to send brackets and braces as they are)"
    )
}

fn flush(literal: &mut String, parts: &mut Vec<Part>) {
    if !literal.is_empty() {
        parts.push(Part::Literal(std::mem::take(literal)));
    }
}

/// `Some(Ok)` for a range, `Some(Err)` for a broken one, `None` for text that is not a range.
fn parse_range(inner: &str) -> Option<Result<Part, String>> {
    let (span, step) = match inner.split_once(':') {
        Some((span, step)) => (span, Some(step)),
        None => (inner, None),
    };
    let (a, b) = span.split_once('-')?;
    let step = match step {
        None => 1,
        Some(s) => match s.parse::<u64>() {
            Ok(0) => return Some(Err(format!("glob [{inner}] has a zero step"))),
            Ok(n) => n,
            Err(_) => return None,
        },
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(a) && digits(b) {
        let (Ok(start), Ok(end)) = (a.parse::<u64>(), b.parse::<u64>()) else {
            return Some(Err(format!("glob [{inner}] has numbers that are too large")));
        };
        if start > end {
            return Some(Err(format!("glob [{inner}] is reversed")));
        }
        let width = if a.len() > 1 && a.starts_with('0') { a.len() } else { 0 };
        return Some(Ok(Part::Numbers { start, end, step, width }));
    }
    let letter = |s: &str| s.len() == 1 && s.as_bytes()[0].is_ascii_alphabetic();
    if letter(a) && letter(b) {
        let (start, end) = (a.as_bytes()[0], b.as_bytes()[0]);
        if start > end || start.is_ascii_lowercase() != end.is_ascii_lowercase() {
            return Some(Err(format!("glob [{inner}] is not an ascending range of one case")));
        }
        return Some(Ok(Part::Letters { start, end, step: step.min(26) as u8 }));
    }
    None
}

impl IntoIterator for Glob {
    type Item = String;
    type IntoIter = GlobIter;

    fn into_iter(self) -> GlobIter {
        let counters = vec![0; self.parts.len()];
        GlobIter { glob: self, counters, done: false }
    }
}

/// The expansions of a [`Glob`], in order.
#[derive(Debug)]
pub struct GlobIter {
    glob: Glob,
    counters: Vec<u64>,
    done: bool,
}

impl Iterator for GlobIter {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.done {
            return None;
        }
        let mut out = String::new();
        for (part, &index) in self.glob.parts.iter().zip(&self.counters) {
            part.push(index, &mut out);
        }
        // Odometer: the last part turns fastest; when the first one wraps, we are done.
        self.done = true;
        for (part, counter) in self.glob.parts.iter().zip(self.counters.iter_mut()).rev() {
            *counter += 1;
            if *counter < part.len() {
                self.done = false;
                break;
            }
            *counter = 0;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(p: &str) -> Vec<String> {
        Glob::parse(p).unwrap().iter().collect()
    }

    #[test]
    fn ranges_sets_and_padding_expand_last_fastest() {
        assert_eq!(expand("x[1-3]"), ["x1", "x2", "x3"]);
        assert_eq!(expand("[08-10]"), ["08", "09", "10"]);
        assert_eq!(expand("[0-10:5]"), ["0", "5", "10"]);
        assert_eq!(expand("[a-c]"), ["a", "b", "c"]);
        assert_eq!(expand("{a,b}[1-2]"), ["a1", "a2", "b1", "b2"]);
        assert_eq!(Glob::parse("/[001-100]/{a,b,c}").unwrap().len(), 300);
        assert_eq!(expand("/[001-100]")[99], "/100");
    }

    #[test]
    fn ipv6_literals_and_escapes_stay_literal() {
        assert_eq!(expand("http://[::1]:8080/"), ["http://[::1]:8080/"]);
        assert_eq!(expand(r"a\[1-2\]"), ["a[1-2]"]);
        assert_eq!(expand("plain"), ["plain"]);
        assert_eq!(expand("closed[but not a range]"), ["closed[but not a range]"]);
    }

    #[test]
    fn broken_ranges_are_errors() {
        assert!(Glob::parse("[9-1]").unwrap_err().contains("reversed"));
        assert!(Glob::parse("[1-9:0]").unwrap_err().contains("zero step"));
        assert!(Glob::parse("[1-99999999999999999999999]").is_err());
        let open = Glob::parse("open[1-2").unwrap_err();
        assert!(open.starts_with("unterminated glob: the '[' at byte 4 has no ']'"), "{open}");
        assert!(open.contains("-g/--globoff"), "{open}");
        assert!(Glob::parse("x{a,b").unwrap_err().contains("the '{' at byte 1 has no '}'"));
    }
}

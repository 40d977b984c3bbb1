//! Is this text one JSON document? A check that builds nothing, for bodies that are only validated
//! and passed through.
//!
//! It accepts exactly what `serde_json::from_slice::<IgnoredAny>` accepts (tests compare the two
//! on a few hundred thousand generated and mutated documents), for less: serde's pass goes through
//! its generic deserializer, while this one is a flat loop over the bytes with an explicit stack,
//! and scans strings eight bytes at a time. Like serde's pass it puts no limit on depth (the stack
//! is one bit per level, bounded by the body limit) and does not check what a `\u` escape names.
//! UTF-8 is the caller's: the input is a `&str`, so outside strings any non-ASCII byte is an error
//! and inside them it is allowed. (What it costs against serde and against the SIMD validators
//! that were tried is in BENCHMARKS.md, "Why the code is shaped this way".)

mod scan;
#[cfg(test)]
mod tests;

/// Documents from this size on go through the structural scan (when the machine has AVX2 and the
/// document is an object or an array); below it, the flat loop is as fast.
const SCAN_FROM: usize = 1024;

/// Whether `text` is one JSON value (RFC 8259), surrounded by optional whitespace.
pub(crate) fn is_json(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() >= SCAN_FROM
        && matches!(b.get(whitespace(b, 0)), Some(b'{' | b'['))
        && scan::available()
        && let Some(verdict) = scan::document(b)
    {
        return verdict;
    }
    flat(text)
}

/// The flat loop's verdict alone, whatever the document (for the tests and the validators'
/// benchmark, which compare it with the scan).
pub(crate) fn flat(text: &str) -> bool {
    document(text.as_bytes()).is_some()
}

/// The structural scan's verdict alone, when it can give one: the document is an object or an
/// array, no deeper than 64, and the machine has AVX2.
#[cfg(test)]
pub(crate) fn scanned(text: &str) -> Option<bool> {
    let b = text.as_bytes();
    if matches!(b.get(whitespace(b, 0)), Some(b'{' | b'[')) && scan::available() {
        scan::document(b)
    } else {
        None
    }
}

/// [`scanned`] with the AVX2 classifier, whatever the machine has.
#[cfg(test)]
pub(crate) fn scanned_avx2(text: &str) -> Option<bool> {
    let b = text.as_bytes();
    if matches!(b.get(whitespace(b, 0)), Some(b'{' | b'[')) { scan::document_avx2(b) } else { None }
}

/// `Some(())` when the bytes are one JSON value; `None` at the first error.
fn document(b: &[u8]) -> Option<()> {
    let mut stack = Stack::default();
    let mut i = whitespace(b, 0);
    'value: loop {
        // A value starts at `i`.
        i = match *b.get(i)? {
            b'{' => {
                i = whitespace(b, i + 1);
                if *b.get(i)? == b'}' {
                    i + 1
                } else {
                    stack.push(OBJECT);
                    i = key(b, i)?;
                    continue 'value;
                }
            }
            b'[' => {
                i = whitespace(b, i + 1);
                if *b.get(i)? == b']' {
                    i + 1
                } else {
                    stack.push(ARRAY);
                    continue 'value;
                }
            }
            b'"' => string(b, i + 1)?,
            b'-' => number(b, i + 1)?,
            b'0'..=b'9' => number(b, i)?,
            b't' => literal(b, i, b"true")?,
            b'f' => literal(b, i, b"false")?,
            b'n' => literal(b, i, b"null")?,
            _ => return None,
        };
        // After a value: close what ends here, then a comma leads to the next value.
        loop {
            i = whitespace(b, i);
            let Some(in_object) = stack.top() else {
                return (i == b.len()).then_some(());
            };
            match *b.get(i)? {
                b',' => {
                    i = whitespace(b, i + 1);
                    if in_object {
                        i = key(b, i)?;
                    }
                    continue 'value;
                }
                b'}' if in_object => stack.pop(),
                b']' if !in_object => stack.pop(),
                _ => return None,
            }
            i += 1;
        }
    }
}

/// An object's key and its colon, from the key's opening quote; returns where the value starts.
#[inline]
fn key(b: &[u8], i: usize) -> Option<usize> {
    if *b.get(i)? != b'"' {
        return None;
    }
    let i = whitespace(b, string(b, i + 1)?);
    if *b.get(i)? != b':' {
        return None;
    }
    Some(whitespace(b, i + 1))
}

/// Skips JSON's four whitespace bytes. Compact documents have none, and pay one comparison.
#[inline(always)]
fn whitespace(b: &[u8], mut i: usize) -> usize {
    while let Some(&c) = b.get(i) {
        if c > b' ' || !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
            break;
        }
        i += 1;
    }
    i
}

const ONES: u64 = u64::MAX / 255;
const HIGH: u64 = ONES << 7;

/// The bytes of `w` that end a plain run inside a string (`"`, `\` or a control character), as
/// their high bits. The lowest flagged byte is always exact (a borrow only moves upward), and only
/// the lowest is used.
#[inline(always)]
fn specials(w: u64) -> u64 {
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let s = w ^ (ONES * u64::from(b'\\'));
    let backslash = s.wrapping_sub(ONES) & !s;
    (control | quote | backslash) & HIGH
}

/// A string's content, from just after its opening quote; returns the index after the closing one.
#[inline]
fn string(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        while let Some(chunk) = b.get(i..i + 8) {
            let found = specials(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
            if found != 0 {
                i += (found.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i = escape(b, i + 1)?,
            c if c < 0x20 => return None,
            _ => i += 1,
        }
    }
}

/// An escape, from just after its backslash.
#[cold]
fn escape(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(i + 1),
        b'u' => b.get(i + 1..i + 5)?.iter().all(u8::is_ascii_hexdigit).then_some(i + 5),
        _ => None,
    }
}

/// A number without its sign: `0` or a digit run not starting with 0, an optional fraction, an
/// optional exponent. What follows it is the caller's to judge.
#[inline]
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'0' => {
            i += 1;
            if b.get(i).is_some_and(u8::is_ascii_digit) {
                return None;
            }
        }
        b'1'..=b'9' => i = digits(b, i + 1),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(b, i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(b, i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

#[inline(always)]
fn digits(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

#[inline(always)]
fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    (b.get(i..i + word.len())? == word).then_some(i + word.len())
}

const OBJECT: bool = true;
const ARRAY: bool = false;

/// The open containers, one bit each (set for an object): 64 levels in a word, deeper ones
/// spilled to the heap, so a shallow document allocates nothing.
#[derive(Default)]
struct Stack {
    word: u64,
    /// Levels held in `word` (0 only when nothing is open).
    len: u32,
    spilled: Vec<u64>,
}

impl Stack {
    #[inline(always)]
    fn push(&mut self, object: bool) {
        if self.len == 64 {
            self.spilled.push(self.word);
            self.word = 0;
            self.len = 0;
        }
        self.word = (self.word << 1) | u64::from(object);
        self.len += 1;
    }

    #[inline(always)]
    fn pop(&mut self) {
        self.word >>= 1;
        self.len -= 1;
        if self.len == 0
            && let Some(word) = self.spilled.pop()
        {
            self.word = word;
            self.len = 64;
        }
    }

    /// Whether the innermost open container is an object; `None` at the top level.
    #[inline(always)]
    fn top(&self) -> Option<bool> {
        (self.len > 0).then_some(self.word & 1 == 1)
    }
}

//! The structural scan: the same verdict as the flat loop for a document that opens with `{` or
//! `[`, computed 64 bytes at a time from bitmasks instead of byte by byte.
//!
//! Each block of 64 bytes becomes one bit per byte for each character that matters (quotes,
//! backslashes, the six structural characters, whitespace, control characters), from AVX2
//! comparisons. Strings come out of the quotes by a prefix XOR (after the escaped quotes are
//! taken out, as simdjson does), and JSON's grammar becomes a handful of rules of the form
//! "the next token after a token of kind A is of a kind in B", each checked for the whole block
//! with a shift and an addition: adding the whitespace mask to the positions just after the A
//! tokens carries each of them across the whitespace to the next token. Only what a rule between
//! neighbours cannot see is walked one by one: the brackets (a stack, which also tells object
//! from array for the commas and the keys) and the scalars (numbers and `true`/`false`/`null`,
//! checked by the flat loop's own functions).
//!
//! A dense document (one token every three bytes, as API responses are) costs about a third of
//! the flat loop's time; BENCHMARKS.md has the measurements.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m256i, __m512i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_max_epu8, _mm256_movemask_epi8,
    _mm256_or_si256, _mm256_set1_epi8, _mm256_sub_epi8, _mm512_cmpeq_epi8_mask, _mm512_cmplt_epu8_mask,
    _mm512_loadu_si512, _mm512_or_si512, _mm512_set1_epi8, _mm512_sub_epi8,
};

use super::literal;

/// Which classifier this machine runs, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    None,
    Avx2,
    Avx512,
}

/// The best classifier this machine has (the standard library detects it once and caches it).
#[cfg(target_arch = "x86_64")]
fn level() -> Level {
    if std::arch::is_x86_feature_detected!("avx512bw") {
        Level::Avx512
    } else if std::arch::is_x86_feature_detected!("avx2") {
        Level::Avx2
    } else {
        Level::None
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn level() -> Level {
    Level::None
}

/// Whether this machine can run the scan.
pub(super) fn available() -> bool {
    level() != Level::None
}

/// The verdict on `b`, which opens with `{` or `[` after optional whitespace; `None` when the
/// scan cannot say (no AVX2, or containers nested deeper than 64), and the flat loop must.
pub(super) fn document(b: &[u8]) -> Option<bool> {
    match level() {
        // SAFETY: the level says the machine has the instructions each function is built for.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { scan_avx512(b) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { scan_avx2(b) },
        _ => None,
    }
}

/// The AVX2 classifier's verdict even on a machine with AVX-512 (which [`document`] would pick),
/// so that the tests check both classifiers where they can.
#[cfg(test)]
pub(super) fn document_avx2(b: &[u8]) -> Option<bool> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the machine has AVX2.
        return unsafe { scan_avx2(b) };
    }
    None
}

/// One bit per byte of a block, for each class of byte the scan tells apart.
#[derive(Clone, Copy, Default)]
struct Classes {
    quote: u64,
    backslash: u64,
    lbrace: u64,
    rbrace: u64,
    lbracket: u64,
    rbracket: u64,
    colon: u64,
    comma: u64,
    whitespace: u64,
    /// Bytes below 0x20.
    control: u64,
    digit: u64,
    zero: u64,
    minus: u64,
    plus: u64,
    dot: u64,
    /// `e` or `E`.
    exponent: u64,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw")]
unsafe fn scan_avx512(b: &[u8]) -> Option<bool> {
    scan_blocks(b, |block| {
        // SAFETY: one 64-byte load from a 64-byte block.
        let v: __m512i = unsafe { _mm512_loadu_si512(block.as_ptr().cast()) };
        let is = |c: u8| _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(c as i8));
        let below = |c: u8| _mm512_cmplt_epu8_mask(v, _mm512_set1_epi8(c as i8));
        Classes {
            quote: is(b'"'),
            backslash: is(b'\\'),
            lbrace: is(b'{'),
            rbrace: is(b'}'),
            lbracket: is(b'['),
            rbracket: is(b']'),
            colon: is(b':'),
            comma: is(b','),
            whitespace: is(b' ') | is(b'\t') | is(b'\n') | is(b'\r'),
            control: below(0x20),
            digit: _mm512_cmplt_epu8_mask(
                _mm512_sub_epi8(v, _mm512_set1_epi8(b'0' as i8)),
                _mm512_set1_epi8(10),
            ),
            zero: is(b'0'),
            minus: is(b'-'),
            plus: is(b'+'),
            dot: is(b'.'),
            exponent: _mm512_cmpeq_epi8_mask(
                _mm512_or_si512(v, _mm512_set1_epi8(0x20)),
                _mm512_set1_epi8(b'e' as i8),
            ),
        }
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_avx2(b: &[u8]) -> Option<bool> {
    scan_blocks(b, |block| {
        // SAFETY: two 32-byte loads within a 64-byte block.
        let (lo, hi): (__m256i, __m256i) = unsafe {
            let p = block.as_ptr().cast::<__m256i>();
            (_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1)))
        };
        let bits = |l: __m256i, h: __m256i| {
            u64::from(_mm256_movemask_epi8(l) as u32) | (u64::from(_mm256_movemask_epi8(h) as u32) << 32)
        };
        let is = |c: u8| {
            let c = _mm256_set1_epi8(c as i8);
            bits(_mm256_cmpeq_epi8(lo, c), _mm256_cmpeq_epi8(hi, c))
        };
        // `v < n` (unsigned) as `max(v, n - 1) == n - 1`.
        let below = |l: __m256i, h: __m256i, n: u8| {
            let top = _mm256_set1_epi8((n - 1) as i8);
            bits(
                _mm256_cmpeq_epi8(_mm256_max_epu8(l, top), top),
                _mm256_cmpeq_epi8(_mm256_max_epu8(h, top), top),
            )
        };
        let zero_char = _mm256_set1_epi8(b'0' as i8);
        let lower = _mm256_set1_epi8(0x20);
        let e = _mm256_set1_epi8(b'e' as i8);
        Classes {
            quote: is(b'"'),
            backslash: is(b'\\'),
            lbrace: is(b'{'),
            rbrace: is(b'}'),
            lbracket: is(b'['),
            rbracket: is(b']'),
            colon: is(b':'),
            comma: is(b','),
            whitespace: is(b' ') | is(b'\t') | is(b'\n') | is(b'\r'),
            control: below(lo, hi, 0x20),
            digit: below(_mm256_sub_epi8(lo, zero_char), _mm256_sub_epi8(hi, zero_char), 10),
            zero: is(b'0'),
            minus: is(b'-'),
            plus: is(b'+'),
            dot: is(b'.'),
            exponent: bits(
                _mm256_cmpeq_epi8(_mm256_or_si256(lo, lower), e),
                _mm256_cmpeq_epi8(_mm256_or_si256(hi, lower), e),
            ),
        }
    })
}

const ODD_BITS: u64 = 0xAAAA_AAAA_AAAA_AAAA;

/// The characters escaped by a backslash in a block (simdjson's escape scanner): the byte after
/// each backslash that is not itself escaped. `escaped_next` carries a backslash at the end of a
/// block into the next one.
#[inline(always)]
fn escaped(backslash: u64, escaped_next: &mut u64) -> u64 {
    if backslash == 0 {
        return std::mem::take(escaped_next);
    }
    let potential = backslash & !*escaped_next;
    // Odd runs of backslashes end in an escaped code, even runs do not: a subtraction tells them
    // apart, the odd bits put back what it borrowed.
    let maybe_escaped = potential << 1;
    let escape_and_code = ((maybe_escaped | ODD_BITS).wrapping_sub(potential)) ^ ODD_BITS;
    let escaped = escape_and_code ^ (backslash | *escaped_next);
    let escape = escape_and_code & backslash;
    *escaped_next = escape >> 63;
    escaped
}

/// Each bit set where an odd number of bits are set at or below it.
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// All ones if the top bit of `x` is set, else zero: a state that runs on into the next block.
#[inline(always)]
fn runs_on(x: u64) -> u64 {
    ((x as i64) >> 63) as u64
}

/// `x` moved one byte later, its last bit carried into the next block.
#[derive(Default)]
struct Shift(u64);

impl Shift {
    #[inline(always)]
    fn next(&mut self, x: u64) -> u64 {
        let shifted = (x << 1) | self.0;
        self.0 = x >> 63;
        shifted
    }
}

/// A rule carried from block to block: the positions just after tokens of one kind, moved across
/// whitespace to the next token.
#[derive(Default)]
struct Follow {
    /// A position past the end of the previous block still to be moved: a token ended on its last
    /// byte, or whitespace ran to its end.
    carry: u64,
}

impl Follow {
    /// The first byte of the next token after each token ending at `ends` (its last byte) and at
    /// `before` (the byte before it), across `whitespace`.
    #[inline(always)]
    fn next(&mut self, ends: u64, before: u64, whitespace: u64) -> u64 {
        let after = (ends << 1) | before | self.carry;
        // Adding the whitespace carries each position through the whitespace that starts there,
        // onto the first byte that is not whitespace (or out of the block).
        let (sum, out) = after.overflowing_add(whitespace);
        self.carry = (ends >> 63) | u64::from(out);
        sum & !whitespace
    }
}

/// Carries positions to the end of the runs of bits they start, across blocks.
#[derive(Default)]
struct Fill {
    carry: u64,
}

impl Fill {
    /// `run` plus `starts` (each at the start of a run of `run` bits, or outside any): each start
    /// carried past the end of its run.
    #[inline(always)]
    fn add(&mut self, starts: u64, run: u64) -> u64 {
        let (sum, out) = run.overflowing_add(starts | self.carry);
        self.carry = u64::from(out);
        sum
    }

    /// For each bit of `starts`, the first bit past its run of `run` bits.
    #[inline(always)]
    fn past(&mut self, starts: u64, run: u64) -> u64 {
        self.add(starts, run) & !run
    }

    /// The runs of `run` bits that `starts` start.
    #[inline(always)]
    fn runs(&mut self, starts: u64, run: u64) -> u64 {
        (self.add(starts, run) ^ run) & run
    }
}

/// Bits `0..=at`.
#[inline(always)]
fn through(at: u32) -> u64 {
    u64::MAX >> (63 - at)
}

/// What an escape may name after its backslash.
#[inline]
fn escape_ok(b: &[u8], i: usize) -> bool {
    match b.get(i) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => true,
        Some(b'u') => b.get(i + 1..i + 5).is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)),
        _ => false,
    }
}

/// The literal starting at `i` is `true`, `false` or `null`, and its run of scalar bytes ends
/// with it.
#[inline(always)]
fn literal_at(b: &[u8], i: usize) -> bool {
    let end = match b[i] {
        b't' => literal(b, i, b"true"),
        b'f' => literal(b, i, b"false"),
        b'n' => literal(b, i, b"null"),
        _ => None,
    };
    end.is_some_and(|end| {
        b.get(end).is_none_or(|c| {
            matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'{' | b'}' | b'[' | b']' | b':' | b',' | b'"')
        })
    })
}

/// The open containers, one bit each (set for an object), as the flat loop keeps them, but no
/// deeper than one word: a deeper document goes back to the flat loop.
#[derive(Default)]
struct Brackets {
    word: u64,
    depth: u32,
}

/// The scan over every block, `classify` turning a block into its classes; `None` when the
/// document is nested too deep for it.
#[inline(always)]
fn scan_blocks(b: &[u8], classify: impl Fn(&[u8; 64]) -> Classes) -> Option<bool> {
    let mut escaped_next = 0u64;
    let mut in_string = 0u64;
    let mut in_object = 0u64;
    let mut open = Brackets::default();
    let (mut scalar_before, mut digit_before, mut exponent_before) =
        (Shift::default(), Shift::default(), Shift::default());
    let (mut dot_before, mut zero_before, mut minus_start_before, mut not_digit_before) =
        (Shift::default(), Shift::default(), Shift::default(), Shift::default());
    let (mut literal_run, mut fraction, mut exponent_part) =
        (Fill::default(), Fill::default(), Fill::default());
    let mut key_string = Fill::default();
    let (mut after_key_start, mut after_value_start, mut after_separator) =
        (Follow::default(), Follow::default(), Follow::default());
    let (mut after_key, mut after_value) = (Follow::default(), Follow::default());
    let mut last = [b' '; 64];
    for (n, chunk) in b.chunks(64).enumerate() {
        let base = n * 64;
        let block: &[u8; 64] = match chunk.try_into() {
            Ok(block) => block,
            Err(_) => {
                // The last, partial block, padded with whitespace.
                last[..chunk.len()].copy_from_slice(chunk);
                &last
            }
        };
        let c = classify(block);

        // Strings: quotes that are not escaped open and close them.
        let escaped = escaped(c.backslash, &mut escaped_next);
        if escaped != 0 {
            let mut bits = escaped;
            while bits != 0 {
                if !escape_ok(b, base + bits.trailing_zeros() as usize) {
                    return Some(false);
                }
                bits &= bits - 1;
            }
        }
        let quote = c.quote & !escaped;
        let inside = prefix_xor(quote) ^ in_string;
        in_string = runs_on(inside);
        let opening = quote & inside;
        let closing = quote & !inside;
        // A raw control character inside a string.
        let mut wrong = c.control & inside;
        let outside = !(inside | quote);
        let whitespace = c.whitespace & outside;
        let (lbrace, rbrace) = (c.lbrace & outside, c.rbrace & outside);
        let (lbracket, rbracket) = (c.lbracket & outside, c.rbracket & outside);
        let (colon, comma) = (c.colon & outside, c.comma & outside);
        let closers = rbrace | rbracket;
        let scalar = outside & !(whitespace | lbrace | lbracket | closers | colon | comma);
        let scalar_shifted = scalar_before.next(scalar);
        let scalar_starts = scalar & !scalar_shifted;

        // Brackets, one by one: they must match, and where the innermost container changes
        // between object and array is noted, for the commas.
        let mut end: Option<u32> = None;
        let mut changes = 0u64;
        let mut bits = lbrace | lbracket | closers;
        let openers = lbrace | lbracket;
        let braces = lbrace | rbrace;
        while bits != 0 {
            let bit = bits & bits.wrapping_neg();
            let was = open.word & 1;
            let object = u64::from(braces & bit != 0);
            if openers & bit != 0 {
                if open.depth == 64 {
                    return None;
                }
                open.word = (open.word << 1) | object;
                open.depth += 1;
            } else {
                if open.depth == 0 || was != object {
                    return Some(false);
                }
                open.word >>= 1;
                open.depth -= 1;
                if open.depth == 0 {
                    end = Some(bit.trailing_zeros());
                    break;
                }
            }
            changes |= bit & ((open.word ^ was) & 1).wrapping_neg();
            bits ^= bit;
        }
        let object = prefix_xor(changes) ^ in_object;
        in_object = runs_on(object);

        // Each token is of a kind its predecessor allows. After `{` and an object's commas come
        // keys (or `}` right after `{`); after `[`, `:` and an array's commas, values (or `]`
        // right after `[`); never a closer after a comma or a colon.
        let value_starts = lbrace | lbracket | opening | scalar_starts;
        let key_starts = after_key_start.next(lbrace | (comma & object), 0, whitespace);
        wrong |= key_starts & !(opening | rbrace);
        wrong |= after_value_start.next(lbracket | colon | (comma & !object), 0, whitespace)
            & !(value_starts | rbracket);
        wrong |= after_separator.next(comma | colon, 0, whitespace) & closers;
        // A key's closing quote: adding its opening quote to the inside of the strings carries it
        // to the end of its string.
        let key_ends = key_string.past(key_starts & opening, inside) & closing;
        wrong |= after_key.next(key_ends, 0, whitespace) & !colon;
        // A scalar's end is known from the byte after it, which may be in the next block.
        let after_scalars = scalar_shifted & !scalar;
        wrong |=
            after_value.next((closing & !key_ends) | closers, after_scalars, whitespace) & !(comma | closers);

        // Numbers, all at once: each byte of a number may follow only certain bytes. Literals
        // (runs that start with a letter) are checked one by one below.
        let literal_starts = scalar_starts & !(c.digit | c.minus);
        let number = scalar & !literal_run.runs(literal_starts, scalar);
        let digit = c.digit & number;
        let prev_digit = digit_before.next(digit);
        let exponent = c.exponent & number;
        let prev_exponent = exponent_before.next(exponent);
        let starts = scalar_starts & number;
        wrong |= number & !(c.digit | c.minus | c.plus | c.dot | c.exponent);
        wrong |= c.minus & number & !(starts | prev_exponent);
        wrong |= c.plus & number & !prev_exponent;
        wrong |= (c.dot | c.exponent) & number & !prev_digit;
        let leading_zero = c.zero & number & (starts | minus_start_before.next(c.minus & starts));
        wrong |= zero_before.next(leading_zero) & c.digit;
        // A number ends on a digit.
        wrong |= not_digit_before.next(number & !c.digit) & !scalar;
        // One fraction at most, before the exponent; one exponent at most, at the end.
        wrong |= fraction.past(dot_before.next(c.dot & number), c.digit) & c.dot;
        wrong |= exponent_part.past(prev_exponent, c.digit | c.minus | c.plus) & (c.dot | c.exponent);

        if let Some(end) = end {
            // The document's value ends here: what follows it is the flat loop's to check.
            wrong &= through(end);
        }
        if wrong != 0 {
            return Some(false);
        }
        let mut bits = literal_starts;
        if let Some(end) = end {
            bits &= through(end);
        }
        while bits != 0 {
            if !literal_at(b, base + bits.trailing_zeros() as usize) {
                return Some(false);
            }
            bits &= bits - 1;
        }
        if let Some(end) = end {
            // Nothing but whitespace may follow the document's value.
            return Some(super::whitespace(b, base + end as usize + 1) == b.len());
        }
    }
    // The input ended inside the document's value.
    Some(false)
}

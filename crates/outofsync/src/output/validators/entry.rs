//! One entry of the store, as bytes: a request's key and its validators. The same encoding in the
//! table (`[len u32][entry]`) and in the log (`[len u32][checksum u32][entry]`).

use std::io::{self, Read};

use crate::engine::conditional::{Key, Validators};

/// The largest entry: a key, a flag byte, an `ETag`, a `Last-Modified` and a next-page URL at
/// their limits, with room to spare. A length above it is corruption, not an entry.
pub const MAX_ENTRY: usize = 80 * 1024;

const ETAG: u8 = 1;
const LAST_MODIFIED: u8 = 2;
const NEXT: u8 = 4;

/// Appends the entry of `key` and `validators` (without a length) to `out`.
pub fn encode(key: &Key, validators: &Validators, out: &mut Vec<u8>) {
    out.extend_from_slice(key);
    let flags = (u8::from(validators.etag.is_some()) * ETAG)
        | (u8::from(validators.last_modified.is_some()) * LAST_MODIFIED)
        | (u8::from(validators.next.is_some()) * NEXT);
    out.push(flags);
    for text in [&validators.etag, &validators.last_modified].into_iter().flatten() {
        out.extend_from_slice(&(text.len().min(u16::MAX as usize) as u16).to_le_bytes());
        out.extend_from_slice(&text.as_bytes()[..text.len().min(u16::MAX as usize)]);
    }
    if let Some(next) = &validators.next {
        out.extend_from_slice(&(next.len() as u32).to_le_bytes());
        out.extend_from_slice(next.as_bytes());
    }
}

/// The key of an entry, if it is long enough to have one.
pub fn key_of(entry: &[u8]) -> Option<Key> {
    entry.get(..16).map(|k| k.try_into().expect("16 bytes"))
}

/// Whether an entry forgets its request (no `ETag`, no `Last-Modified`): the merge drops it.
pub fn is_deletion(entry: &[u8]) -> bool {
    entry.get(16).is_none_or(|flags| flags & (ETAG | LAST_MODIFIED) == 0)
}

/// The validators of an entry; `None` when it does not decode (corruption).
pub fn decode(entry: &[u8]) -> Option<Validators> {
    let flags = *entry.get(16)?;
    let mut rest = &entry[17..];
    let mut text = |wide: bool| -> Option<String> {
        let (len, skip) = if wide {
            (u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize, 4)
        } else {
            (usize::from(u16::from_le_bytes(rest.get(..2)?.try_into().ok()?)), 2)
        };
        let bytes = rest.get(skip..skip + len)?;
        rest = &rest[skip + len..];
        String::from_utf8(bytes.to_vec()).ok()
    };
    let etag = if flags & ETAG != 0 { Some(text(false)?) } else { None };
    let last_modified = if flags & LAST_MODIFIED != 0 { Some(text(false)?) } else { None };
    let next = if flags & NEXT != 0 { Some(text(true)?) } else { None };
    Some(Validators { etag, last_modified, next })
}

/// FNV-1a, 32 bits: enough to tell a torn or garbled log entry from a whole one.
pub fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Reads the next `[len u32][entry]` of a table or a sorted run into `buf`; false at the end.
///
/// # Errors
/// The file ends inside an entry, or a length is out of bounds.
pub fn read_framed(reader: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut len = [0; 4];
    match reader.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if !(17..=MAX_ENTRY).contains(&len) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("an entry of {len} bytes")));
    }
    buf.resize(len, 0);
    reader.read_exact(buf)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_decode_to_what_was_encoded() {
        let v = Validators {
            etag: Some("W/\"x\"".into()),
            last_modified: None,
            next: Some("http://a.test/p2".into()),
        };
        let mut out = Vec::new();
        encode(&[7; 16], &v, &mut out);
        assert_eq!(key_of(&out), Some([7; 16]));
        assert_eq!(decode(&out), Some(v));
        assert!(!is_deletion(&out));
        out.clear();
        encode(&[1; 16], &Validators::default(), &mut out);
        assert!(is_deletion(&out));
        assert_eq!(decode(&out[..16]), None);
    }
}

//! `GET /changes?since=T` (a collection whose items change over time), `GET /changes/{id}` (one
//! item, with `ETag` and `Last-Modified`) and `POST /changes/touch?n=K` (K items change now).
//!
//! Deterministic, as the tests need: the collection has [`TOTAL`] items; item `n` starts with
//! `updated_at` = 2026-01-01T00:00:00Z + `n` seconds, and the server's clock is logical — each
//! touched item gets the next second after the newest `updated_at`, the least recently changed
//! items first. Items with an even id write their time with a `+02:00` offset, so a client that
//! compares the strings instead of the instants gets the order wrong.

use std::sync::Mutex;

use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::conditional::{self, Validators};
use super::reply::{self, Answer, Query};

/// Items in the collection.
pub const TOTAL: u64 = 1000;
/// 2026-01-01T00:00:00Z, in seconds since the Unix epoch: the start of the logical clock.
const EPOCH: u64 = 1_767_225_600;
/// The largest page.
const MAX_PER_PAGE: u64 = 1000;

/// The state of the collection.
pub struct Changes {
    items: Mutex<Vec<Item>>,
}

#[derive(Clone, Copy)]
struct Item {
    updated_at: u64,
    version: u32,
}

impl Default for Changes {
    fn default() -> Self {
        let items = (1..=TOTAL).map(|n| Item { updated_at: EPOCH + n, version: 1 }).collect();
        Self { items: Mutex::new(items) }
    }
}

/// `GET /changes?since=T&per_page=M&page=P`: the items changed after `T` (RFC 3339, any offset;
/// default: all), oldest change first, a page at a time, with the `next` page's URL.
pub fn list(changes: &Changes, query: &Query, host: &str) -> Answer {
    let since = match query.str("since") {
        None | Some("") => 0,
        Some(text) => rfc3339_seconds(text)
            .ok_or_else(|| reply::bad_request(format!("since must be an RFC 3339 time, got {text:?}")))?,
    };
    let page = query.get::<u64>("page")?.unwrap_or(1).max(1);
    let per_page =
        reply::capped("per_page", query.get::<u64>("per_page")?.unwrap_or(100).max(1), MAX_PER_PAGE)?;
    let mut changed: Vec<(u64, u64)> = {
        let items = changes.items.lock().unwrap();
        (1..=TOTAL)
            .zip(items.iter())
            .filter(|(_, item)| item.updated_at > since)
            .map(|(n, item)| (item.updated_at, n))
            .collect()
    };
    changed.sort_unstable();
    let first = usize::try_from((page - 1).saturating_mul(per_page)).unwrap_or(usize::MAX).min(changed.len());
    let last = first.saturating_add(per_page as usize).min(changed.len());
    let items = changes.items.lock().unwrap();
    let page_items: Vec<Value> =
        changed[first..last].iter().map(|&(_, n)| document(n, items[(n - 1) as usize])).collect();
    drop(items);
    let since_param = query
        .str("since")
        .map(|s| format!("&since={}", form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()))
        .unwrap_or_default();
    let next = (last < changed.len())
        .then(|| format!("http://{host}/changes?page={}&per_page={per_page}{since_param}", page + 1));
    Ok(reply::json(
        StatusCode::OK,
        &json!({ "items": page_items, "page": page, "total": changed.len(), "next": next }),
    ))
}

/// `GET /changes/{id}`: one item, with validators; `304` when the client has it already.
pub fn one(changes: &Changes, id: &str, headers: &HeaderMap) -> Answer {
    let n = reply::segment::<u64>("id", id)?;
    if !(1..=TOTAL).contains(&n) {
        return Err(reply::error(StatusCode::NOT_FOUND, format!("no item {n}: ids go from 1 to {TOTAL}")));
    }
    let item = changes.items.lock().unwrap()[(n - 1) as usize];
    let validators = Validators::new(format!("c{n}-v{}", item.version), item.updated_at);
    conditional::reply(headers, &validators, || Ok(reply::json(StatusCode::OK, &document(n, item))))
}

/// `POST /changes/touch?n=K`: the K least recently changed items change now, each a second after
/// the one before; says which, and when the last changed.
pub fn touch(changes: &Changes, query: &Query) -> Answer {
    let k = reply::capped("n", query.get::<u64>("n")?.unwrap_or(1), TOTAL)?;
    let mut items = changes.items.lock().unwrap();
    let mut order: Vec<u64> = (1..=TOTAL).collect();
    order.sort_by_key(|&n| (items[(n - 1) as usize].updated_at, n));
    let mut clock = items.iter().map(|i| i.updated_at).max().unwrap_or(EPOCH);
    let mut touched = Vec::new();
    for &n in order.iter().take(k as usize) {
        clock += 1;
        let item = &mut items[(n - 1) as usize];
        (item.updated_at, item.version) = (clock, item.version + 1);
        touched.push(n);
    }
    touched.sort_unstable();
    Ok(reply::json(StatusCode::OK, &json!({ "touched": touched, "updated_at": time(clock, 0) })))
}

fn document(n: u64, item: Item) -> Value {
    let offset = if n.is_multiple_of(2) { 2 } else { 0 };
    json!({ "id": n, "name": format!("change-{n}"), "version": item.version, "updated_at": time(item.updated_at, offset) })
}

/// `secs` as RFC 3339, written at a UTC offset of `hours` (0 writes `Z`).
fn time(secs: u64, hours: i64) -> String {
    let local = secs as i64 + hours * 3600;
    let (days, rest) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    let zone = if hours == 0 {
        "Z".to_owned()
    } else {
        format!("{}{:02}:00", if hours > 0 { '+' } else { '-' }, hours.abs())
    };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{zone}", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// The date of `days` since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a date (Howard Hinnant's `days_from_civil`).
fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whole seconds since the epoch of an RFC 3339 time (`2026-01-01T00:00:00Z`, `…+02:00`, with or
/// without fractions, which are dropped); a time before 1970 is 0.
fn rfc3339_seconds(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, s) =
        (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        zone if zone.len() == 6
            && matches!(zone.as_bytes()[0], b'+' | b'-')
            && zone.as_bytes()[3] == b':' =>
        {
            let minutes = zone[1..3].parse::<i64>().ok()? * 60 + zone[4..6].parse::<i64>().ok()?;
            if zone.starts_with('-') { -minutes * 60 } else { minutes * 60 }
        }
        _ => return None,
    };
    let secs = days(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset;
    Some(secs.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_and_read_back_at_any_offset() {
        assert_eq!(time(EPOCH, 0), "2026-01-01T00:00:00Z");
        assert_eq!(time(EPOCH + 61, 2), "2026-01-01T02:01:01+02:00");
        assert_eq!(rfc3339_seconds("2026-01-01T02:01:01+02:00"), Some(EPOCH + 61));
        assert_eq!(rfc3339_seconds("2025-12-31T19:00:00.25-05:00"), Some(EPOCH));
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_seconds("yesterday"), None);
    }

    #[test]
    fn a_touch_changes_the_least_recently_changed_items_after_the_newest() {
        let changes = Changes::default();
        let q = |s: &'static str| Query::parse(Some(s));
        let body = |outcome: Answer| {
            let reply = outcome.unwrap();
            let (_, body) = reply.into_parts();
            body
        };
        _ = body(touch(&changes, &q("n=3")));
        let items = changes.items.lock().unwrap();
        assert_eq!(items[0].updated_at, EPOCH + TOTAL + 1);
        assert_eq!(items[2].updated_at, EPOCH + TOTAL + 3);
        assert_eq!((items[3].updated_at, items[3].version), (EPOCH + 4, 1));
    }
}

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
fn time(secs: u64, hours: i8) -> String {
    let instant =
        jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(i64::MAX)).unwrap_or(jiff::Timestamp::MAX);
    if hours == 0 {
        instant.to_string()
    } else {
        instant.display_with_offset(jiff::tz::offset(hours)).to_string()
    }
}

/// Whole seconds since the epoch of an RFC 3339 time (`2026-01-01T00:00:00Z`, `…+02:00`, with or
/// without fractions, which are dropped); a time before 1970 is 0.
///
/// jiff's parser, not the client's: the server and the client read timestamps each its own way,
/// so that the tests of incremental pulls do not agree by construction.
fn rfc3339_seconds(text: &str) -> Option<u64> {
    let instant: jiff::Timestamp = text.parse().ok()?;
    Some(u64::try_from(instant.as_second()).unwrap_or(0))
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

//! `GET /json` (a small document, `?id=` echoed, `?size=` padded) and `GET /items` (a paginated collection).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;

use bytes::Bytes;
use http::header::LINK;
use http::{HeaderValue, StatusCode};
use serde_json::json;

use super::body::Body;
use super::reply::{self, APPLICATION_JSON, Answer, Query};

/// The largest document `/json?size=` builds.
pub const MAX_SIZE: usize = 64 << 20;
/// The largest page `/items` serves.
pub const MAX_PER_PAGE: u64 = 1000;

/// Everything after `{"id":N` in the default document (~300 bytes in all).
const TAIL: &str = concat!(
    r#","name":"outofsync","kind":"sample","tags":["async","rust","tokio","hyper"],"active":true,"#,
    r#""score":98.6,"created_at":"2026-01-01T00:00:00Z","#,
    r#""owner":{"login":"ferris","id":42,"url":"http://example.invalid/users/ferris"},"#,
    r#""stats":{"stars":1024,"forks":64,"watchers":128},"#,
    r#""description":"A small JSON document from the outofsync built-in API."}"#
);

/// How many padded documents stay cached: benchmarks ask for the same size again and again.
const CACHE_ENTRIES: usize = 16;

/// The documents of `/json`, padded ones cached by size.
#[derive(Default)]
pub struct Documents {
    sized: Mutex<HashMap<usize, Bytes>>,
}

impl Documents {
    /// The part of a document after its `id`, padded to make the whole about `size` bytes.
    fn tail(&self, size: Option<usize>) -> Bytes {
        let Some(size) = size.filter(|&s| s > TAIL.len() + 8) else {
            return Bytes::from_static(TAIL.as_bytes());
        };
        if let Some(tail) = self.sized.lock().unwrap().get(&size) {
            return tail.clone();
        }
        // Built outside the lock: a 64 MiB document takes a while and must not stall other requests.
        let tail = Bytes::from(padded_tail(size));
        let mut cache = self.sized.lock().unwrap();
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(size, tail.clone());
        tail
    }
}

/// A tail whose document is `size` bytes when the id is one digit: an `items` array of small objects
/// (so parsing it is real work, as with a real API) topped up with a `padding` string.
fn padded_tail(size: usize) -> Vec<u8> {
    let target = size.saturating_sub(r#"{"id":1"#.len());
    let mut out = String::with_capacity(target + 64);
    out.push_str(&TAIL[..TAIL.len() - 1]);
    out.push_str(r#","items":["#);
    let closing = r#"],"padding":""}"#.len();
    let mut n = 0u64;
    loop {
        let mut item = String::with_capacity(80);
        let _ = write!(
            item,
            r#"{}{{"n":{n},"name":"item-{n}","value":{},"ok":{},"tags":["x","y"]}}"#,
            if n == 0 { "" } else { "," },
            (n * 37) % 1000,
            !n.is_multiple_of(3)
        );
        if out.len() + item.len() + closing > target {
            break;
        }
        out.push_str(&item);
        n += 1;
    }
    out.push_str(r#"],"padding":""#);
    let fill = target.saturating_sub(out.len() + 2);
    out.extend(std::iter::repeat_n('.', fill));
    out.push_str("\"}");
    out.into_bytes()
}

/// `GET /json?id=N&size=BYTES`.
pub fn document(docs: &Documents, query: &Query) -> Answer {
    let size = query.get::<usize>("size")?.map(|s| reply::capped("size", s, MAX_SIZE)).transpose()?;
    let id = match query.str("id") {
        None => "1".to_owned(),
        Some(v) => match v.parse::<i64>() {
            // Re-printed, so `07` echoes as the JSON number 7, not the invalid `07`.
            Ok(n) => n.to_string(),
            Err(_) => serde_json::to_string(v).expect("a string serialises"),
        },
    };
    let head = Bytes::from(format!(r#"{{"id":{id}"#));
    let body = Body::chunks(VecDeque::from([head, docs.tail(size)]));
    Ok(reply::with_type(StatusCode::OK, body, APPLICATION_JSON))
}

/// `GET /items?page=N&per_page=M&total=T` (pages count from 1; `cursor=cN` is the same as `page=N`;
/// `cycle=N` makes page N link back to page 1).
pub fn items(query: &Query, host: &str) -> Answer {
    let page = match query.str("cursor") {
        Some(c) => match c.strip_prefix('c').and_then(|n| n.parse::<u64>().ok()) {
            Some(n) => n,
            None => return Err(reply::bad_request(format!("bad cursor {c:?}"))),
        },
        None => query.get::<u64>("page")?.unwrap_or(1),
    };
    if page == 0 {
        return Err(reply::bad_request("page counts from 1"));
    }
    let per_page = query.get::<u64>("per_page")?.unwrap_or(10);
    if per_page == 0 {
        return Err(reply::bad_request("per_page must be at least 1"));
    }
    let per_page = reply::capped("per_page", per_page, MAX_PER_PAGE)?;
    let total = reply::capped("total", query.get::<u64>("total")?.unwrap_or(100), 1 << 40)?;

    let first = (page - 1).saturating_mul(per_page);
    let last = page.saturating_mul(per_page).min(total);
    let items: Vec<_> = (first..last)
        .map(|k| json!({ "id": k + 1, "name": format!("item-{}", k + 1), "value": (k * 37) % 1000 }))
        .collect();
    let has_next = last < total;
    // `cycle=N`: page N links back to page 1, for testing that clients do not walk in circles.
    let next_page = if query.get::<u64>("cycle")? == Some(page) { 1 } else { page + 1 };
    let cycle = query.str("cycle").map(|c| format!("&cycle={c}")).unwrap_or_default();
    let next = has_next
        .then(|| format!("http://{host}/items?page={next_page}&per_page={per_page}&total={total}{cycle}"));
    let doc = json!({
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": total,
        "next": next,
        "next_page": has_next.then_some(next_page),
        "next_cursor": has_next.then(|| format!("c{next_page}")),
    });
    let mut reply = reply::json(StatusCode::OK, &doc);
    if let Some(next) = next
        && let Ok(link) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\""))
    {
        reply.headers_mut().insert(LINK, link);
    }
    Ok(reply)
}

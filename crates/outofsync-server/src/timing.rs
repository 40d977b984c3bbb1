//! Endpoints about time: `GET /delay/{ms}`, `GET /drip` (a byte at a time) and `GET /endless`.

use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::StatusCode;
use http::header::{CONTENT_LENGTH, HeaderValue};
use serde_json::json;

use super::body::Body;
use super::reply::{self, Answer, Query};

/// The longest `/delay` and the longest `/drip`, in milliseconds (10 minutes).
pub const MAX_DELAY_MS: u64 = 600_000;
/// The most bytes `/drip` sends.
pub const MAX_DRIP_BYTES: u64 = 10 << 20;

/// `GET /delay/{ms}`: answers `{"delay_ms": ms}` after `ms` milliseconds.
pub async fn delay(ms: &str) -> Answer {
    let ms = reply::capped("delay", reply::segment::<u64>("delay", ms)?, MAX_DELAY_MS)?;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(reply::json(StatusCode::OK, &json!({ "delay_ms": ms })))
}

/// `GET /drip?bytes=N&interval_ms=M&delay_ms=D`: after `D` ms, sends `N` bytes (`*`) one at a
/// time, `M` ms apart, with a truthful `Content-Length`.
pub fn drip(query: &Query) -> Answer {
    let bytes = reply::capped("bytes", query.get::<u64>("bytes")?.unwrap_or(10), MAX_DRIP_BYTES)?;
    let interval = query.get::<u64>("interval_ms")?.unwrap_or(100);
    let delay = query.get::<u64>("delay_ms")?.unwrap_or(0);
    reply::capped(
        "delay_ms + bytes * interval_ms",
        bytes.saturating_mul(interval).saturating_add(delay),
        MAX_DELAY_MS,
    )?;

    let body = stream::unfold(0u64, move |sent| async move {
        if sent == bytes {
            return None;
        }
        let wait = if sent == 0 { delay } else { interval };
        tokio::time::sleep(Duration::from_millis(wait)).await;
        Some((Ok(Bytes::from_static(b"*")), sent + 1))
    });
    let mut reply = reply::with_type(
        StatusCode::OK,
        Body::stream(body),
        HeaderValue::from_static("application/octet-stream"),
    );
    reply.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(bytes));
    Ok(reply)
}

/// `GET /endless`: a chunked body that never ends, as fast as the client reads it.
pub fn endless() -> Answer {
    static CHUNK: [u8; 16 * 1024] = [b'x'; 16 * 1024];
    let body = stream::repeat_with(|| Ok(Bytes::from_static(&CHUNK)));
    Ok(reply::with_type(StatusCode::OK, Body::stream(body), HeaderValue::from_static("text/plain")))
}

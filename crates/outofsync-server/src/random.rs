//! `GET /bytes/{n}`: `n` pseudo-random bytes, the same for the same `n` and server seed.

use bytes::Bytes;
use futures_util::stream;
use http::StatusCode;
use http::header::{CONTENT_LENGTH, HeaderValue};

use super::body::Body;
use super::reply::{self, Answer};

/// The most bytes `/bytes/{n}` sends.
pub const MAX_BYTES: u64 = 1 << 30;
const CHUNK: u64 = 64 * 1024;

/// `GET /bytes/{n}`: `application/octet-stream`, streamed in 64 KiB chunks with a `Content-Length`.
pub fn bytes(seed: u64, n: &str) -> Answer {
    let n = reply::capped("n", reply::segment::<u64>("n", n)?, MAX_BYTES)?;
    let rng = fastrand::Rng::with_seed(seed ^ n.rotate_left(17));
    let body = stream::unfold((rng, n), |(mut rng, left)| async move {
        if left == 0 {
            return None;
        }
        let len = left.min(CHUNK) as usize;
        let mut chunk = vec![0u8; len];
        rng.fill(&mut chunk);
        Some((Ok(Bytes::from(chunk)), (rng, left - len as u64)))
    });
    let mut reply = reply::with_type(
        StatusCode::OK,
        Body::stream(body),
        HeaderValue::from_static("application/octet-stream"),
    );
    reply.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(n));
    Ok(reply)
}

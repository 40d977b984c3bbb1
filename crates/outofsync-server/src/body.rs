//! The response body of the built-in server: whole buffers or a lazy stream, plus the in-flight guard.
//!
//! One concrete type instead of a boxed `dyn Body` keeps the hot path (`/json`) free of an allocation
//! per response, and lets every body carry the [`InFlight`] guard that `/stats` needs: a request stays
//! "in flight" until its body has been written out and dropped by hyper, not merely until the handler
//! returned.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use http_body::{Frame, SizeHint};

use super::stats::InFlight;

/// A stream of body chunks produced on demand (drips, endless bodies, bombs, random bytes).
pub type ChunkStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// A response body of the built-in server.
pub struct Body {
    kind: Kind,
    guard: Option<InFlight>,
}

enum Kind {
    /// Buffers known up front; the length is exact, so hyper sends `Content-Length`.
    Chunks { chunks: VecDeque<Bytes>, len: u64 },
    /// Produced lazily; the length is unknown unless the handler sets `Content-Length` itself.
    Stream(ChunkStream),
}

impl Body {
    /// An empty body.
    pub fn empty() -> Self {
        Self::chunks(VecDeque::new())
    }

    /// A body made of one buffer.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self::chunks(VecDeque::from([bytes.into()]))
    }

    /// A body made of several buffers sent back to back without copying them together.
    pub fn chunks(chunks: VecDeque<Bytes>) -> Self {
        let len = chunks.iter().map(|c| c.len() as u64).sum();
        Self { kind: Kind::Chunks { chunks, len }, guard: None }
    }

    /// A body produced lazily by a stream.
    pub fn stream(stream: impl Stream<Item = io::Result<Bytes>> + Send + 'static) -> Self {
        Self { kind: Kind::Stream(Box::pin(stream)), guard: None }
    }

    /// Ties the request's in-flight accounting to the life of this body.
    pub(crate) fn with_guard(mut self, guard: Option<InFlight>) -> Self {
        self.guard = guard;
        self
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match &mut self.kind {
            Kind::Chunks { chunks, len } => {
                let next = chunks.pop_front();
                if let Some(chunk) = &next {
                    *len -= chunk.len() as u64;
                }
                Poll::Ready(next.map(|c| Ok(Frame::data(c))))
            }
            Kind::Stream(stream) => stream.as_mut().poll_next(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.kind, Kind::Chunks { chunks, .. } if chunks.is_empty())
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Chunks { len, .. } => SizeHint::with_exact(*len),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}

//! Compressed endpoints: `GET /gzip`, `/deflate`, `/brotli`, `/zstd`, and the decompression bomb `GET /bomb`.
//!
//! A bomb is generated while it is sent: the payload runs through a chain of streaming encoders and
//! whatever they emit goes out as a chunk, so a client that stops reading (as it should, at its body
//! limit) stops the work, and a bomb of gigabytes costs the server no memory.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::stream;
use http::StatusCode;
use http::header::{CONTENT_ENCODING, HeaderValue, VARY};

use super::body::Body;
use super::reply::{self, APPLICATION_JSON, Answer, Query};

/// The largest decoded size `/bomb` produces.
pub const MAX_BOMB: u64 = 64 << 30;
/// The most content-codings `/bomb` chains.
pub const MAX_CHAIN: usize = 4;

/// A content-coding the server can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` (RFC 1952).
    Gzip,
    /// `deflate`: the zlib format (RFC 1950), as HTTP means it.
    Deflate,
    /// `br` (RFC 7932).
    Brotli,
    /// `zstd` (RFC 8878).
    Zstd,
}

impl Coding {
    /// Every coding, in the order of the endpoints.
    pub const ALL: [Coding; 4] = [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd];

    /// The token used in `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }

    /// Parses a token (`brotli` is accepted for `br`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "gzip" => Some(Coding::Gzip),
            "deflate" => Some(Coding::Deflate),
            "br" | "brotli" => Some(Coding::Brotli),
            "zstd" => Some(Coding::Zstd),
            _ => None,
        }
    }

    /// Wraps `inner` in a streaming encoder of this coding.
    fn wrap(self, inner: Box<dyn Encoder>) -> io::Result<Box<dyn Encoder>> {
        Ok(match self {
            Coding::Gzip => Box::new(flate2::write::GzEncoder::new(inner, flate2::Compression::best())),
            Coding::Deflate => Box::new(flate2::write::ZlibEncoder::new(inner, flate2::Compression::best())),
            Coding::Brotli => Box::new(Brotli(Some(brotli::CompressorWriter::new(inner, 32 * 1024, 5, 22)))),
            Coding::Zstd => Box::new(zstd::stream::write::Encoder::new(inner, 3)?),
        })
    }
}

/// A `Write` that can be finished, finishing the encoders behind it in turn.
trait Encoder: Write + Send {
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// Where the last encoder of a chain writes: a buffer the stream drains after every step.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Encoder for Sink {
    fn finish(self: Box<Self>) -> io::Result<()> {
        Ok(())
    }
}

impl Encoder for flate2::write::GzEncoder<Box<dyn Encoder>> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        (*self).finish()?.finish()
    }
}

impl Encoder for flate2::write::ZlibEncoder<Box<dyn Encoder>> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        (*self).finish()?.finish()
    }
}

impl Encoder for zstd::stream::write::Encoder<'static, Box<dyn Encoder>> {
    fn finish(self: Box<Self>) -> io::Result<()> {
        (*self).finish()?.finish()
    }
}

/// brotli's writer finishes its stream in `into_inner`; the `Option` lets `finish` take it.
struct Brotli(Option<brotli::CompressorWriter<Box<dyn Encoder>>>);

impl Write for Brotli {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.as_mut().expect("not finished").write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.as_mut().expect("not finished").flush()
    }
}

impl Encoder for Brotli {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.0.take().expect("finished once").into_inner().finish()
    }
}

/// Builds the encoder chain for `codings` (applied in the order given) in front of `sink`.
fn chain(codings: &[Coding], sink: &Sink) -> io::Result<Box<dyn Encoder>> {
    let mut top: Box<dyn Encoder> = Box::new(sink.clone());
    for coding in codings.iter().rev() {
        top = coding.wrap(top)?;
    }
    Ok(top)
}

/// Compresses `data` with `codings` in one go.
pub fn compress(data: &[u8], codings: &[Coding]) -> io::Result<Vec<u8>> {
    let sink = Sink::default();
    let mut top = chain(codings, &sink)?;
    top.write_all(data)?;
    top.finish()?;
    Ok(sink.take())
}

/// The four compressed documents, made once at start-up.
pub struct Compressed {
    docs: Vec<(Coding, Bytes)>,
}

impl Compressed {
    /// Compresses the sample document with every coding.
    pub fn new() -> Self {
        let docs = Coding::ALL
            .iter()
            .map(|&c| {
                let doc = format!(
                    r#"{{"encoding":"{}","id":1,"name":"outofsync","tags":["async","rust"],"note":"{}"}}"#,
                    c.token(),
                    "compressible text ".repeat(16)
                );
                (c, Bytes::from(compress(doc.as_bytes(), &[c]).expect("in-memory compression succeeds")))
            })
            .collect();
        Self { docs }
    }
}

impl Default for Compressed {
    fn default() -> Self {
        Self::new()
    }
}

fn encoded_reply(body: Body, codings: &[Coding]) -> Answer {
    let tokens: Vec<&str> = codings.iter().map(|c| c.token()).collect();
    let mut reply = reply::with_type(StatusCode::OK, body, APPLICATION_JSON);
    let value = HeaderValue::from_str(&tokens.join(", ")).expect("tokens are valid header text");
    reply.headers_mut().insert(CONTENT_ENCODING, value);
    reply.headers_mut().insert(VARY, HeaderValue::from_static("accept-encoding"));
    Ok(reply)
}

/// `GET /gzip`, `/deflate`, `/brotli`, `/zstd`: a JSON document compressed with that coding.
pub fn document(compressed: &Compressed, coding: Coding) -> Answer {
    let (_, bytes) = compressed.docs.iter().find(|(c, _)| *c == coding).expect("every coding is precomputed");
    encoded_reply(Body::full(bytes.clone()), &[coding])
}

/// `GET /bomb?encoding=gzip&size=BYTES`: `{"bomb":"AAAA…"}`, exactly `size` bytes once decoded,
/// compressed with `encoding` (a comma-separated chain such as `gzip,br` applies several, in order).
pub fn bomb(query: &Query) -> Answer {
    let codings = query
        .str("encoding")
        .unwrap_or("gzip")
        .split(',')
        .map(|t| Coding::parse(t).ok_or_else(|| reply::bad_request(format!("unknown encoding {t:?}"))))
        .collect::<Result<Vec<_>, _>>()?;
    reply::capped("number of encodings", codings.len(), MAX_CHAIN)?;
    let size = reply::capped("size", query.get::<u64>("size")?.unwrap_or(1 << 30), MAX_BOMB)?;
    const HEAD: &[u8] = br#"{"bomb":""#;
    const FOOT: &[u8] = br#""}"#;
    let Some(fill) = size.checked_sub((HEAD.len() + FOOT.len()) as u64) else {
        return Err(reply::bad_request(format!("size must be at least {}", HEAD.len() + FOOT.len())));
    };

    let sink = Sink::default();
    let top = chain(&codings, &sink).map_err(|e| reply::error(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    struct Bomb {
        top: Option<Box<dyn Encoder>>,
        sink: Sink,
        started: bool,
        fill: u64,
        /// Input written since the chain last emitted anything.
        unsent: u64,
    }
    static AS: [u8; 256 * 1024] = [b'A'; 256 * 1024];
    // A chain of codings emits a few bytes per gigabyte: without a flush now and then, one poll
    // would compress the whole bomb (seconds of a server thread) before the first byte went out,
    // and a client that gave up long ago could not stop it.
    const FLUSH_EVERY: u64 = 16 << 20;
    let state = Bomb { top: Some(top), sink, started: false, fill, unsent: 0 };
    let body = stream::try_unfold(state, |mut s| async move {
        loop {
            let Some(top) = s.top.as_mut() else { return Ok(None) };
            if !s.started {
                top.write_all(HEAD)?;
                s.started = true;
            } else if s.fill > 0 {
                let n = s.fill.min(AS.len() as u64) as usize;
                top.write_all(&AS[..n])?;
                s.fill -= n as u64;
                s.unsent += n as u64;
                if s.unsent >= FLUSH_EVERY {
                    top.flush()?;
                }
            } else {
                top.write_all(FOOT)?;
                s.top.take().expect("checked above").finish()?;
            }
            let out = s.sink.take();
            if !out.is_empty() {
                s.unsent = 0;
                return Ok(Some((Bytes::from(out), s)));
            }
        }
    });
    encoded_reply(Body::stream(body), &codings)
}

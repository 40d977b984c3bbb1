//! The response body as it arrives: content-decoding (gzip, deflate, br, zstd; at most two
//! codings) into a buffer that refuses to grow past the body limit.
//!
//! Decoders are push-style (`Write`): every chunk from the wire is written through the chain into
//! a [`Limited`] buffer, so a decompression bomb fails the moment its output crosses the limit —
//! after at most one decoder buffer of extra work — instead of after inflating.

use std::io::{self, Write};

use http::HeaderMap;
use http::header::CONTENT_ENCODING;

/// The most content-codings a response may stack.
pub const MAX_CODINGS: usize = 2;

/// Why a body could not be taken in.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Over the limit, decoded or on the wire.
    TooLarge(String),
    /// Not decodable (unknown coding, corrupt or truncated compressed data).
    Decode(String),
}

/// The decoded body, growing up to a limit.
struct Limited {
    buf: Vec<u8>,
    max: u64,
    exceeded: bool,
}

impl Write for Limited {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if (self.buf.len() + data.len()) as u64 > self.max {
            self.exceeded = true;
            return Err(io::Error::other("decoded body over the limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ContentCoding {
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

impl ContentCoding {
    fn parse(token: &str) -> Result<Option<ContentCoding>, BodyError> {
        Ok(Some(match token.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => ContentCoding::Gzip,
            "deflate" => ContentCoding::Deflate,
            "br" => ContentCoding::Brotli,
            "zstd" => ContentCoding::Zstd,
            "identity" | "" => return Ok(None),
            other => return Err(BodyError::Decode(format!("unsupported content-coding {other:?}"))),
        }))
    }

    fn name(self) -> &'static str {
        match self {
            ContentCoding::Gzip => "gzip",
            ContentCoding::Deflate => "deflate",
            ContentCoding::Brotli => "br",
            ContentCoding::Zstd => "zstd",
        }
    }
}

/// One streaming decoder writing into `W`.
enum Decoder<W: Write> {
    Gzip(flate2::write::MultiGzDecoder<W>),
    Deflate(flate2::write::ZlibDecoder<W>),
    Brotli(Box<brotli::DecompressorWriter<W>>),
    Zstd(zstd::stream::write::Decoder<'static, W>),
}

impl<W: Write> Decoder<W> {
    fn new(coding: ContentCoding, inner: W) -> io::Result<Self> {
        Ok(match coding {
            ContentCoding::Gzip => Decoder::Gzip(flate2::write::MultiGzDecoder::new(inner)),
            ContentCoding::Deflate => Decoder::Deflate(flate2::write::ZlibDecoder::new(inner)),
            ContentCoding::Brotli => {
                Decoder::Brotli(Box::new(brotli::DecompressorWriter::new(inner, 32 * 1024)))
            }
            ContentCoding::Zstd => Decoder::Zstd(zstd::stream::write::Decoder::new(inner)?),
        })
    }

    fn inner(&mut self) -> &mut W {
        match self {
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Deflate(d) => d.get_mut(),
            Decoder::Brotli(d) => d.get_mut(),
            Decoder::Zstd(d) => d.get_mut(),
        }
    }

    /// Ends the stream, failing if it was corrupt or cut short.
    fn finish(&mut self) -> io::Result<()> {
        match self {
            Decoder::Gzip(d) => d.try_finish(),
            Decoder::Deflate(d) => d.try_finish(),
            Decoder::Brotli(d) => {
                d.close().map_err(|_| io::Error::new(io::ErrorKind::UnexpectedEof, "brotli data ends early"))
            }
            Decoder::Zstd(d) => d.do_finish(),
        }
    }
}

impl<W: Write> Write for Decoder<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.write(data),
            Decoder::Deflate(d) => d.write(data),
            Decoder::Brotli(d) => d.write(data),
            Decoder::Zstd(d) => d.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Decoder::Gzip(d) => d.flush(),
            Decoder::Deflate(d) => d.flush(),
            Decoder::Brotli(d) => d.flush(),
            Decoder::Zstd(d) => d.flush(),
        }
    }
}

enum Chain {
    Identity(Limited),
    One(Box<Decoder<Limited>>),
    Two(Box<Decoder<Decoder<Limited>>>),
}

impl Chain {
    fn limited(&mut self) -> &mut Limited {
        match self {
            Chain::Identity(l) => l,
            Chain::One(d) => d.inner(),
            Chain::Two(d) => d.inner().inner(),
        }
    }
}

/// A body being received: counts wire bytes, decodes, and enforces the limit on both.
pub(crate) struct BodyBuffer {
    chain: Chain,
    /// The codings in the order they were applied (the header's order), for messages.
    codings: Vec<ContentCoding>,
    wire: u64,
    max: u64,
}

impl BodyBuffer {
    /// Prepares for a body with these response headers; `expected` is the declared length.
    pub fn new(headers: &HeaderMap, max: u64, expected: Option<u64>) -> Result<Self, BodyError> {
        let mut codings = Vec::new();
        for value in headers.get_all(CONTENT_ENCODING) {
            let value = value
                .to_str()
                .map_err(|_| BodyError::Decode("Content-Encoding is not readable text".into()))?;
            for token in value.split(',') {
                if let Some(coding) = ContentCoding::parse(token)? {
                    codings.push(coding);
                }
            }
        }
        if codings.len() > MAX_CODINGS {
            return Err(BodyError::Decode(format!(
                "{} content-codings stacked ({}); at most {MAX_CODINGS} are accepted",
                codings.len(),
                codings.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
            )));
        }
        // A declared length is reserved at once. A body of unknown length grows from its first
        // chunk: reserving a few KiB ahead for it is memory a request waiting for its body holds
        // for nothing, 10,000 times over with 10,000 in flight (BENCHMARKS.md). Decoders write
        // their output in pieces, for which a start of 8 KiB saves growing step by step.
        let capacity = match (codings.is_empty(), expected) {
            (true, Some(n)) => n.min(max) as usize,
            (true, None) => 0,
            (false, _) => 8 * 1024,
        };
        let limited = Limited { buf: Vec::with_capacity(capacity), max, exceeded: false };
        let decode_error = |e: io::Error| BodyError::Decode(format!("cannot set up the decoder: {e}"));
        // The last coding applied is the first to undo: it receives the wire bytes.
        let chain = match codings[..] {
            [] => Chain::Identity(limited),
            [only] => Chain::One(Box::new(Decoder::new(only, limited).map_err(decode_error)?)),
            [first, last] => {
                let inner = Decoder::new(first, limited).map_err(decode_error)?;
                Chain::Two(Box::new(Decoder::new(last, inner).map_err(decode_error)?))
            }
            _ => unreachable!("checked against MAX_CODINGS"),
        };
        Ok(Self { chain, codings, wire: 0, max })
    }

    /// Takes in one chunk from the wire.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        self.wire += chunk.len() as u64;
        if self.wire > self.max {
            return Err(BodyError::TooLarge(format!(
                "body over the limit of {} bytes on the wire",
                self.max
            )));
        }
        let result = match &mut self.chain {
            Chain::Identity(l) => l.write_all(chunk),
            Chain::One(d) => d.write_all(chunk),
            Chain::Two(d) => d.write_all(chunk),
        };
        result.map_err(|e| self.error(e))
    }

    /// Ends the body: checks that the compressed data was complete and returns the decoded bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, BodyError> {
        let result = match &mut self.chain {
            Chain::Identity(_) => Ok(()),
            Chain::One(d) => d.finish(),
            Chain::Two(d) => d.finish().and_then(|()| d.inner().finish()),
        };
        result.map_err(|e| self.error(e))?;
        Ok(std::mem::take(&mut self.chain.limited().buf))
    }

    /// Bytes received on the wire so far.
    pub fn wire_bytes(&self) -> u64 {
        self.wire
    }

    fn error(&mut self, e: io::Error) -> BodyError {
        let max = self.max;
        if self.chain.limited().exceeded {
            BodyError::TooLarge(format!("body over the limit of {max} bytes once decompressed"))
        } else {
            let names: Vec<_> = self.codings.iter().map(|c| c.name()).collect();
            BodyError::Decode(format!("bad {} data: {e}", names.join(" + ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use outofsync_server::{Coding as Enc, compress};

    fn headers(encoding: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_ENCODING, HeaderValue::from_str(encoding).unwrap());
        h
    }

    fn decode(encoding: &str, wire: &[u8], max: u64) -> Result<Vec<u8>, BodyError> {
        let mut body = BodyBuffer::new(&headers(encoding), max, None)?;
        for chunk in wire.chunks(1000) {
            body.push(chunk)?;
        }
        body.finish()
    }

    #[test]
    fn every_coding_and_a_chain_round_trips() {
        let data = b"{\"hello\":\"world\"}".repeat(100);
        for (name, enc) in
            [("gzip", Enc::Gzip), ("deflate", Enc::Deflate), ("br", Enc::Brotli), ("zstd", Enc::Zstd)]
        {
            let wire = compress(&data, &[enc]).unwrap();
            assert_eq!(decode(name, &wire, 1 << 20).unwrap(), data, "{name}");
        }
        let wire = compress(&data, &[Enc::Gzip, Enc::Brotli]).unwrap();
        assert_eq!(decode("gzip, br", &wire, 1 << 20).unwrap(), data);
    }

    #[test]
    fn bombs_stop_at_the_limit_and_truncation_is_caught() {
        let zeros = vec![b'A'; 8 << 20];
        for (name, enc) in
            [("gzip", Enc::Gzip), ("deflate", Enc::Deflate), ("br", Enc::Brotli), ("zstd", Enc::Zstd)]
        {
            let wire = compress(&zeros, &[enc]).unwrap();
            assert!(matches!(decode(name, &wire, 1 << 20), Err(BodyError::TooLarge(_))), "{name}");
            let cut = &wire[..wire.len() / 2];
            assert!(matches!(decode(name, cut, 16 << 20), Err(BodyError::Decode(_))), "{name} truncated");
        }
        assert!(matches!(decode("gzip, gzip, gzip", b"", 10), Err(BodyError::Decode(_))));
        assert!(matches!(decode("compress", b"", 10), Err(BodyError::Decode(_))));
    }
}

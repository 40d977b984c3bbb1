//! `outofsync serve`.

use std::net::IpAddr;
use std::time::Duration;

use clap::Args;

/// Run the built-in JSON API on HTTP/1.1 and HTTP/2 (h2c).
///
/// The first line on stdout is `listening on http://IP:PORT`. SIGINT or SIGTERM stops accepting,
/// lets requests in flight finish (up to --grace), and exits 0.
#[derive(Args, Debug)]
#[command(after_long_help = ENDPOINTS)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port to listen on; 0 picks a free port.
    #[arg(short = 'p', long, value_name = "N", default_value_t = 8080)]
    pub port: u16,
    /// Seed of /flaky?p= and /bytes/{count}, so that runs repeat.
    #[arg(long, value_name = "N", default_value_t = outofsync_server::DEFAULT_SEED)]
    pub seed: u64,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// On shutdown, how long requests in flight may take to finish.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
}

// Placeholders are named, never `{n}`: clap turns `{n}` into a line break wherever it appears in
// help text.
const ENDPOINTS: &str = "\
Endpoints (JSON bodies unless noted; bad parameters get a 4xx with a JSON error):
  GET  /json[?id=N][&size=BYTES]        a ~300-byte document; id echoed; padded up to 64 MiB
  GET  /items?page=N&per_page=M&total=T  a page of a collection, with `next` and a Link header
                                         (cursor=cN is page=N; cycle=N links page N back to 1)
  ANY  /delay/{ms}                       answers after ms milliseconds (at most 10 minutes)
  GET  /status/{code}                    answers with that status
  GET  /flaky/{k}?key=K                  503 for the first k requests with key K, then 200
  GET  /flaky?p=P                        503 with probability P (seeded)
  GET  /ratelimit?rps=N                  a server-wide token bucket; over it 429 + Retry-After
  GET  /redirect/{count}                 that many redirects, then /json
  GET  /redirect-to?url=U&status=S       a redirect to any URL
  ANY  /anything                         echoes method, path, query, headers and body
  GET  /gzip /deflate /brotli /zstd      a compressed document
  GET  /bomb?encoding=gzip&size=BYTES    a decompression bomb (size bytes once decoded)
  GET  /bytes/{count}                    that many seeded pseudo-random bytes
  GET  /drip?bytes=N&interval_ms=M       N bytes, one every M ms
  GET  /endless                          a body that never ends
  GET  /stats, POST /stats/reset         requests by path and host, in flight now and at most,
                                         and begun in each second (per_second)";

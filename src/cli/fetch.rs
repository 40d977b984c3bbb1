//! `outofsync fetch`.

use std::path::PathBuf;

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use outofsync::engine::{BodyMode, Config, Rate, Resolve, StatusRanges};
use outofsync::output::Fsync;

use super::{HumanDuration, Size};

/// Fetch many requests concurrently; every request ends as exactly one JSON record.
///
/// INPUT is a file of requests (one per line), `-` for stdin, or a URL with its scheme (an
/// argument without `://` is a file name; a missing one that looks like a host and a path is
/// said to be a URL without its scheme). With no INPUT, requests
/// are read from stdin (from a terminal, it says so: type them, then Ctrl-D). A line is a URL (curl-style globs expand: [1-100], [001-100], [a-z],
/// {a,b,c}) or a JSON object {"url":…,"method":…,"headers":{…},"body":"…","json":…,"id":…};
/// other fields of the object are carried into the record under "meta". Blank lines and lines
/// starting with # are skipped. A line that cannot become a request becomes an invalid_request
/// record naming the line; nothing is sent for it.
#[derive(Args, Debug)]
#[command(after_long_help = EXIT_CODES)]
pub struct FetchArgs {
    /// Files of requests, `-` for stdin, or URLs.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Requests in flight at once (lowered, with a warning, to what the open-file limit allows).
    #[arg(short = 'c', long, value_name = "N", default_value_t = Config::default().concurrency, help_heading = "Limits")]
    pub concurrency: usize,
    /// Requests in flight at once to one host (scheme, name and port) [default: no extra limit].
    #[arg(long, value_name = "N", help_heading = "Limits")]
    pub per_host: Option<usize>,
    /// Requests per host: N/s, N/m or N/h, paced evenly (one every 1/N, no bursts) [default: none].
    #[arg(long, value_name = "RATE", help_heading = "Limits")]
    pub rate: Option<Rate>,
    /// Requests over all hosts: N/s, N/m or N/h, paced evenly [default: none].
    #[arg(long, value_name = "RATE", help_heading = "Limits")]
    pub global_rate: Option<Rate>,
    /// Threads of the event loop. One holds tens of thousands of requests in flight and sends
    /// tens of thousands a second, with a quarter less CPU per request than two (which wake each
    /// other and share every lock); more pays only when one core is saturated: big bodies to
    /// check as JSON, many TLS handshakes.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024), help_heading = "Limits")]
    pub threads: u16,

    /// Method of requests that do not name one [default: GET, or POST with a body].
    #[arg(short = 'X', long, value_name = "METHOD", value_parser = parse_method, help_heading = "Requests")]
    pub method: Option<http::Method>,
    /// Header for every request, "Name: value" (repeatable; "Name:" removes a default header).
    #[arg(short = 'H', long = "header", value_name = "HEADER", help_heading = "Requests")]
    pub headers: Vec<String>,
    /// Body of requests that have none; @FILE reads it from a file.
    #[arg(short = 'd', long, value_name = "DATA", conflicts_with = "json", help_heading = "Requests")]
    pub data: Option<String>,
    /// JSON body of requests that have none (sets Content-Type and Accept to application/json).
    #[arg(long, value_name = "BODY", help_heading = "Requests")]
    pub json: Option<String>,
    /// User-Agent header.
    #[arg(short = 'A', long, value_name = "NAME", help_heading = "Requests")]
    pub user_agent: Option<String>,
    /// Basic authentication, as curl's: an Authorization header sent to the hosts of --auth-host
    /// (dropped when a redirect leaves the host). The password stays out of records, logs and the
    /// manifest; other users of this machine may see it in the process list, as with curl:
    /// --basic-env reads it from the environment instead.
    #[arg(short = 'u', long, value_name = "USER:PASSWORD", help_heading = "Authentication")]
    pub user: Option<String>,
    #[command(flatten)]
    pub auth: crate::cli::AuthArgs,
    /// Do not expand globs in URLs (without it, a [ or { never closed is an invalid_request).
    #[arg(short = 'g', long, help_heading = "Requests")]
    pub globoff: bool,

    /// Time allowed to connect (TCP and TLS).
    #[arg(long, value_name = "DURATION", default_value_t = HumanDuration(Config::default().connect_timeout), help_heading = "Timeouts")]
    pub connect_timeout: HumanDuration,
    /// Time allowed for one attempt, from sending to the end of the body.
    #[arg(long, value_name = "DURATION", default_value_t = HumanDuration(Config::default().timeout), help_heading = "Timeouts")]
    pub timeout: HumanDuration,
    /// Time allowed without receiving anything.
    #[arg(long, value_name = "DURATION", default_value_t = HumanDuration(Config::default().read_timeout), help_heading = "Timeouts")]
    pub read_timeout: HumanDuration,
    /// Time allowed for one input from its first attempt, all retries and waits included.
    #[arg(long, value_name = "DURATION", default_value_t = HumanDuration(Config::default().deadline), help_heading = "Timeouts")]
    pub deadline: HumanDuration,

    /// Retries of failures that may pass: connect errors, timeouts, cut-off bodies, 408, 429,
    /// 500, 502, 503, 504. Only idempotent methods are retried unless --retry-non-idempotent.
    #[arg(long, value_name = "N", default_value_t = Config::default().retry.retries, help_heading = "Retries")]
    pub retries: u32,
    /// First backoff; doubles with each retry, with full jitter.
    #[arg(long, value_name = "DURATION", default_value_t = HumanDuration(Config::default().retry.backoff), help_heading = "Retries")]
    pub backoff: HumanDuration,
    /// Largest backoff.
    #[arg(long, value_name = "DURATION", default_value_t = HumanDuration(Config::default().retry.max_backoff), help_heading = "Retries")]
    pub max_backoff: HumanDuration,
    /// Longest Retry-After honoured (it pauses the whole host); a longer one ends the retries.
    #[arg(long, value_name = "DURATION", default_value_t = HumanDuration(Config::default().retry.max_retry_after), help_heading = "Retries")]
    pub max_retry_after: HumanDuration,
    /// Also retry POST and PATCH (they may then take effect twice).
    #[arg(long, help_heading = "Retries")]
    pub retry_non_idempotent: bool,

    /// Redirects followed; 0 follows none (3xx then fails with http_status).
    #[arg(long, value_name = "N", default_value_t = Config::default().max_redirects, help_heading = "Redirects")]
    pub max_redirects: u32,
    /// Refuse redirects from https to http.
    #[arg(long, help_heading = "Redirects")]
    pub https_only: bool,

    /// Resolve HOST:PORT to ADDR instead of asking DNS (curl's meaning; repeatable).
    #[arg(long, value_name = "HOST:PORT:ADDR", help_heading = "Connections")]
    pub resolve: Vec<Resolve>,
    /// Trust the PEM certificates in FILE instead of the built-in roots.
    #[arg(long, value_name = "FILE", help_heading = "Connections")]
    pub cacert: Option<PathBuf>,
    /// Do not verify TLS certificates. Anyone on the path can read and change the traffic.
    #[arg(short = 'k', long, help_heading = "Connections")]
    pub insecure: bool,
    /// Send every request through this proxy: http://, https:// (TLS to the proxy), socks5://
    /// (names resolved here) or socks5h:// (by the proxy); credentials go in the URL
    /// (http://USER:PASSWORD@HOST:PORT) and never into records or logs. Plain http:// requests go
    /// to an HTTP proxy as they are, others through a CONNECT tunnel. "" uses no proxy at all
    /// [default: from the environment, as curl: https_proxy, http_proxy, all_proxy, no_proxy,
    /// in either case].
    #[arg(short = 'x', long, value_name = "URL", help_heading = "Connections")]
    pub proxy: Option<String>,
    /// Hosts that go direct, not through the proxy: comma-separated names (a name covers its
    /// subdomains), IP addresses, CIDR ranges, or * for all; replaces no_proxy.
    #[arg(long, value_name = "LIST", help_heading = "Connections")]
    pub noproxy: Option<String>,
    /// Speak HTTP/1.1 only.
    #[arg(long, conflicts_with = "http2_prior_knowledge", help_heading = "Connections")]
    pub http1_only: bool,
    /// Speak HTTP/2 without negotiating it, also over plain http (h2c).
    #[arg(long, help_heading = "Connections")]
    pub http2_prior_knowledge: bool,

    /// Build each request from a data row: a URL with {field} placeholders ({a.b} for nested
    /// fields), filled from JSONL objects or CSV rows; values are percent-encoded. Row fields no
    /// template uses go to the record's "meta", a field "id" to its "id".
    #[arg(long, value_name = "TEMPLATE", help_heading = "Pipelines")]
    pub url_template: Option<String>,
    /// A header filled from each row, "Name: {field}" (repeatable).
    #[arg(
        long = "header-template",
        value_name = "TEMPLATE",
        requires = "url_template",
        help_heading = "Pipelines"
    )]
    pub header_templates: Vec<String>,
    /// A body filled from each row, values inserted as they are.
    #[arg(long, value_name = "TEMPLATE", requires = "url_template", conflicts_with_all = ["json_template", "data", "json"], help_heading = "Pipelines")]
    pub body_template: Option<String>,
    /// A JSON body filled from each row: {field} becomes the field's JSON value (strings quoted),
    /// e.g. '{"name": {name}, "tags": {tags}}'.
    #[arg(long, value_name = "TEMPLATE", requires = "url_template", conflicts_with_all = ["data", "json"], help_heading = "Pipelines")]
    pub json_template: Option<String>,
    /// How the input is written: lines (URLs and JSON request objects), jsonl (data rows, one
    /// JSON object per line) or csv (data rows under a header row; LF or CRLF line endings; a
    /// record's "line" is the line its row starts on) [default: lines, or jsonl
    /// with --url-template].
    #[arg(long, value_name = "FORMAT", value_enum, help_heading = "Pipelines")]
    pub input_format: Option<InputFormat>,
    /// A jq program applied to each successful JSON response; its one output replaces "json".
    /// Several outputs, or none, fail the record (decode) instead of changing its shape: wrap the
    /// program in [ … ] for an array, e.g. --jq '[.items[].id]' (not .items[].id). It failing on
    /// one response fails that record (decode).
    #[arg(long, value_name = "FILTER", help_heading = "Pipelines")]
    pub jq: Option<String>,
    /// Walk paginated collections, each page its own record ("page" from 0, "next" when there is
    /// one): link (the Link header's rel="next") or json:PATH (a jq path to the next URL, e.g.
    /// json:.next). A next page already fetched ends the walk with a redirect error record.
    #[arg(long, value_name = "HOW", help_heading = "Pipelines")]
    pub paginate: Option<String>,
    /// With --paginate json:PATH, the value found is a cursor or page number: set it as this query
    /// parameter of the first page's URL (with --paginate link, a usage error).
    #[arg(long, value_name = "NAME", requires = "paginate", help_heading = "Pipelines")]
    pub page_param: Option<String>,
    /// The most pages walked per input. A walk it ends with pages left is counted in the summary
    /// and makes the exit code 1; --resume with a larger --max-pages goes on from there.
    #[arg(long, value_name = "N", default_value_t = Config::default().max_pages, help_heading = "Pipelines")]
    pub max_pages: u32,

    /// Keep the final response's headers in each record: "headers", an object of lower-case names
    /// (a name sent more than once holds an array of its values).
    #[arg(short = 'i', long, help_heading = "Output")]
    pub include: bool,
    /// Keep only this response header in each record's "headers" (repeatable), e.g.
    /// --keep-header etag --keep-header x-ratelimit-remaining.
    #[arg(long = "keep-header", value_name = "NAME", conflicts_with = "include", help_heading = "Output")]
    pub keep_headers: Vec<http::HeaderName>,
    /// Where the records go [default: stdout, as with - or /dev/stdout]. A file that already holds
    /// records is refused unless --resume or --overwrite, one that holds anything else unless
    /// --overwrite; FILE.manifest.json beside it records the input and options. /dev/null, a FIFO or another device is just written to: no manifest, no
    /// sync, no --resume.
    #[arg(short = 'o', long, value_name = "FILE", help_heading = "Output")]
    pub output: Option<PathBuf>,
    /// Start over when the output file already holds records (they are lost).
    #[arg(long, conflicts_with = "resume", help_heading = "Output")]
    pub overwrite: bool,
    /// What the record keeps of the body: auto (JSON under "json", else "text" or "body_b64"),
    /// json (anything else fails with decode), text, none.
    #[arg(long, value_name = "MODE", default_value_t = Config::default().body, value_parser = PossibleValuesParser::new(BodyMode::NAMES).try_map(|s| s.parse::<BodyMode>()), help_heading = "Output")]
    pub body: BodyMode,
    /// Largest body accepted, on the wire and decompressed (e.g. 32MiB, 500k).
    #[arg(long, value_name = "SIZE", default_value_t = Size(Config::default().max_body), help_heading = "Output")]
    pub max_body: Size,
    /// Write records in input order instead of as each completes. Memory stays bounded: at most
    /// --window requests run ahead of the oldest unfinished one. When the window is full, no new
    /// request starts until that one ends, so one slow request (up to its --deadline) pauses the run.
    #[arg(long, help_heading = "Output")]
    pub ordered: bool,
    /// With --ordered: requests started ahead of the oldest unfinished one
    /// [default: 4 × --concurrency].
    #[arg(long, value_name = "N", requires = "ordered", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Output")]
    pub window: Option<u64>,
    /// When the output file is synced to disk: interval (every second or 1,000 records, and at the
    /// end), always (after every write), never (left to the operating system). A failed write or
    /// sync ends the run with exit code 2; a sync is never retried. Only regular files are synced.
    #[arg(long, value_name = "WHEN", default_value_t = Fsync::default(), value_parser = PossibleValuesParser::new(Fsync::NAMES).try_map(|s| s.parse::<Fsync>()), help_heading = "Output")]
    pub fsync: Fsync,
    /// Statuses counted as success, e.g. 200-299,404.
    #[arg(long, value_name = "LIST", default_value_t = Config::default().ok_status, help_heading = "Output")]
    pub ok_status: StatusRanges,
    /// Also write the end-of-run summary to FILE as JSON (- for stdout, with -o FILE). The path
    /// is checked before anything is fetched.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub summary_json: Option<PathBuf>,
    /// No progress bar (done and total, whole records per second, ETA; it is drawn only when
    /// stderr is a terminal anyway).
    #[arg(long, help_heading = "Output")]
    pub no_progress: bool,
    /// Neither progress nor summary on stderr (-s/--silent, as in curl, is the same).
    #[arg(short = 'q', long, visible_short_alias = 's', visible_alias = "silent", help_heading = "Output")]
    pub quiet: bool,

    /// Continue an interrupted run into the same --output: keep its records, failed ones too (a
    /// torn last line is cut), and fetch only the inputs that have none. Assumes the same input
    /// in the same order, and refuses a changed input or changed options that shape records
    /// (checked against FILE.manifest.json). An input with the same content (touched, copied) or
    /// only lines added at its end is the same. With no records yet, a plain start.
    #[arg(long, requires = "output", help_heading = "Interruptions")]
    pub resume: bool,
    /// With --resume: also fetch again the inputs whose record failed. The output is first
    /// rewritten without those records (into a temporary file, synced, renamed over it), so each
    /// input still has exactly one record; the new ones are appended at the end.
    #[arg(long, requires = "resume", help_heading = "Interruptions")]
    pub retry_failed: bool,
    /// With --resume: do not check that the input is the first run's, at your own risk. Needed
    /// to resume from stdin, which cannot be checked, or an input the check refuses that still
    /// holds the first run's requests in the same order (more may follow); an input that moved
    /// would be skipped or fetched under another one's index.
    #[arg(long, requires = "resume", help_heading = "Interruptions")]
    pub assume_same_input: bool,
    /// Never send a POST, PATCH or other non-idempotent request twice, even across a crash: each
    /// is noted in OUTPUT.sent (synced, unless --fsync never) before it is sent, and a --resume
    /// ends each noted input that has no record as an `io` failure instead of sending it again
    /// (--retry-failed does not resend those either). A resume must repeat it.
    #[arg(long, requires = "output", help_heading = "Interruptions")]
    pub at_most_once: bool,
    /// On SIGINT or SIGTERM: stop reading input, give the requests in flight this long, then
    /// cancel the rest (they get no record, so --resume fetches them; the summary counts them). A
    /// second signal quits at once.
    #[arg(long, value_name = "DURATION", default_value = "10s", help_heading = "Interruptions")]
    pub grace: HumanDuration,

    /// Take only the inputs whose index i is K modulo N (K from 0), under their own indexes: N
    /// processes run with 0/N … N-1/N, and their outputs together hold exactly one record per
    /// input. The manifest records the shard (a resume must name the same one). Limits (-c,
    /// --per-host, --rate) are this process's: give each shard its share of a host's budget.
    #[arg(long, value_name = "K/N", help_heading = "Scale-out")]
    pub shard: Option<outofsync::shard::Shard>,
    /// Serve Prometheus metrics at http://ADDR/metrics while the run lasts (e.g. 127.0.0.1:9464):
    /// records by outcome, failures by kind, requests in flight, a latency histogram.
    #[arg(long, value_name = "ADDR", help_heading = "Output")]
    pub metrics: Option<std::net::SocketAddr>,
}

/// How input lines are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// URLs and JSON request objects.
    Lines,
    /// Data rows, one JSON object per line (needs --url-template).
    Jsonl,
    /// Data rows under a CSV header row (needs --url-template).
    Csv,
}

pub const EXIT_CODES: &str = "\
Exit codes:
  0  every request succeeded
  1  some records failed (they are in the output, with the reason), or --max-pages cut a walk
  2  usage or I/O error: bad flag, unreadable input, unwritable output, a refused --resume
  130, 143  stopped by SIGINT (Ctrl-C) or SIGTERM: every record written is whole; --resume
     fetches the rest
A closed stdout pipe (| head) ends the run quietly with the code of the records written.";

fn parse_method(s: &str) -> Result<http::Method, outofsync::request::ParseError> {
    outofsync::request::parse_method(s)
}

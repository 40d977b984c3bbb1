//! Conformance against a server nobody here wrote: the real binary against Debian's nginx on every
//! listener of `support::nginx` (HTTP/1.1, TLS with HTTP/1.1 or HTTP/2 by ALPN, h2c, keep-alive
//! limits, a rate limit), directly and through the fault proxy; and the TLS failures a user meets
//! first. Each test starts its own nginx (milliseconds) and checks three things against what nginx
//! itself saw: every record ok, every body byte for byte the file served, and nginx's access-log
//! count equal to the records' `attempts` (nothing sent that the records do not show).
//!
//! Without nginx these tests return early after one line on stderr, and fail on CI
//! (`support::real`). The last two tests check the harness itself.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::faultproxy::{Fault, FaultProxy};
use crate::support::nginx::{DOCUMENTS, Listener, Nginx, raw_get};
use crate::support::{outofsync, records};

/// Requests per conformance run: enough for many connections and every document.
const N: usize = 200;

/// The document the `i`th request asks for: mostly small ones, some 64 KiB, a chunked one, and a
/// 5 MiB one every 50 requests (bodies are kept as text, so 5 MiB ones weigh on the output).
fn document_for(i: usize) -> &'static str {
    if i % 50 == 49 {
        return "5m.json";
    }
    match i % 10 {
        0..=3 => "small.json",
        4 | 5 => "1k.json",
        6 | 7 => "64k.json",
        _ => "chunked.json",
    }
}

/// One run of the binary.
struct Run {
    records: Vec<Value>,
    stderr: String,
    elapsed: Duration,
}

/// Fetches `urls` (given on stdin) with `args`, bodies kept as text so they can be compared byte
/// for byte; fails the test if the run does not end within `limit`.
fn fetch(urls: &[String], args: &[String], limit: Duration) -> Run {
    let start = Instant::now();
    let out = outofsync()
        .timeout(limit)
        .args(["fetch", "-q", "--body", "text"])
        .args(args)
        .arg("-")
        .write_stdin(urls.join("\n") + "\n")
        .output()
        .unwrap_or_else(|e| panic!("the run did not end within {limit:?}: {e}"));
    let run = Run {
        records: records(&out.stdout),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    };
    assert_eq!(run.records.len(), urls.len(), "one record per input; stderr: {}", run.stderr);
    run
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// A record without its body, short enough for a failure message.
fn brief(record: &Value) -> String {
    let mut r = record.clone();
    for body in ["text", "json", "body_b64"] {
        r.as_object_mut().map(|o| o.remove(body));
    }
    let mut text = r.to_string();
    text.truncate(600);
    text
}

/// Why `record`'s body is not the bytes of `name`, if it is not.
fn body_mismatch(nginx: &Nginx, record: &Value, name: &str) -> Option<String> {
    let expected = nginx.document(name);
    let Some(got) = record["text"].as_str() else {
        return Some(format!("no text body for {name}: {}", brief(record)));
    };
    let got = got.as_bytes();
    if got == expected {
        return None;
    }
    let at = got.iter().zip(&expected).position(|(a, b)| a != b).unwrap_or(got.len().min(expected.len()));
    Some(format!(
        "{name}: {} bytes, expected {}; first difference at byte {at}: {}",
        got.len(),
        expected.len(),
        brief(record)
    ))
}

/// No ok record has a body other than its document's.
fn assert_no_wrong_body(nginx: &Nginx, run: &Run, document: impl Fn(usize) -> &'static str) {
    let wrong: Vec<String> = run
        .records
        .iter()
        .filter(|r| r["ok"] == true)
        .filter_map(|r| body_mismatch(nginx, r, document(r["i"].as_u64().unwrap() as usize)))
        .collect();
    assert!(wrong.is_empty(), "{} ok records with a wrong body; first: {}", wrong.len(), wrong[0]);
}

/// Every record ok, and its body byte for byte its document.
fn assert_all_ok(nginx: &Nginx, run: &Run, document: impl Fn(usize) -> &'static str) {
    let failed: Vec<&Value> = run.records.iter().filter(|r| r["ok"] != true).collect();
    assert!(
        failed.is_empty(),
        "{} of {} records failed; first: {}; stderr: {}",
        failed.len(),
        run.records.len(),
        brief(failed[0]),
        run.stderr.trim()
    );
    assert_no_wrong_body(nginx, run, document);
}

/// nginx logged no request the records do not count, and missed none but those of requests the
/// fault failed: a request written to a connection that is reset may never reach nginx, but
/// no request may reach it that its record does not count.
fn assert_nginx_counted_no_unrecorded_attempt(nginx: &Nginx, listener: Listener, run: &Run) {
    let attempts: u64 = run.records.iter().map(|r| r["attempts"].as_u64().unwrap()).sum();
    let failed = run.records.iter().filter(|r| r["ok"] == false).count() as u64;
    let logged = nginx.requests(listener).len() as u64;
    assert!(
        logged <= attempts && attempts - logged <= failed,
        "{}: nginx logged {logged} requests, the records say {attempts} attempts ({failed} failed)",
        listener.name()
    );
}

/// nginx logged exactly as many requests on `listener` as the records say were attempted.
fn assert_nginx_counted_every_attempt(nginx: &Nginx, listener: Listener, run: &Run) {
    let attempts: u64 = run.records.iter().map(|r| r["attempts"].as_u64().unwrap()).sum();
    let logged = nginx.requests(listener).len() as u64;
    assert_eq!(
        logged,
        attempts,
        "{}: nginx logged {logged} requests, the records say {attempts} attempts",
        listener.name()
    );
}

/// nginx never refused a request's headers as a protocol error.
fn assert_no_protocol_error(nginx: &Nginx) {
    let log = nginx.error_log();
    let refused = log.lines().find(|l| l.contains("client sent"));
    assert!(refused.is_none(), "nginx refused the client's request: {}", refused.unwrap_or_default());
}

/// `n` requests for the mixed documents on `listener`, `-c 16` and `extra` arguments.
fn conformance(nginx: &Nginx, listener: Listener, n: usize, extra: &[&str]) -> Run {
    let urls: Vec<String> =
        (0..n).map(|i| nginx.url(listener, &format!("/{}?i={i}", document_for(i)))).collect();
    let args = [nginx.args(listener), strings(&["-c", "16", "--timeout", "30s"]), strings(extra)].concat();
    let run = fetch(&urls, &args, Duration::from_secs(90));
    assert_no_protocol_error(nginx);
    assert_all_ok(nginx, &run, document_for);
    assert_nginx_counted_every_attempt(nginx, listener, &run);
    let protocol = if matches!(listener, Listener::TlsH2 | Listener::H2c) { "HTTP/2.0" } else { "HTTP/1.1" };
    let entries = nginx.requests(listener);
    assert!(
        entries.iter().all(|e| e.protocol == protocol),
        "{}: every request over {protocol}",
        listener.name()
    );
    run
}

#[test]
fn nginx_h1_every_document_arrives_byte_for_byte_and_every_attempt_is_counted() {
    let Some(nginx) = Nginx::start() else { return };
    conformance(&nginx, Listener::H1, N, &[]);
}

#[test]
fn nginx_tls_h1_every_document_arrives_byte_for_byte_and_every_attempt_is_counted() {
    let Some(nginx) = Nginx::start() else { return };
    conformance(&nginx, Listener::TlsH1, N, &[]);
}

#[test]
fn nginx_tls_h2_every_document_arrives_byte_for_byte_and_every_attempt_is_counted() {
    let Some(nginx) = Nginx::start() else { return };
    conformance(&nginx, Listener::TlsH2, N, &[]);
}

#[test]
fn nginx_h2c_prior_knowledge_every_document_arrives_byte_for_byte_and_every_attempt_is_counted() {
    let Some(nginx) = Nginx::start() else { return };
    conformance(&nginx, Listener::H2c, N, &[]);
}

#[test]
fn nginx_closing_after_three_requests_loses_nothing_and_sends_nothing_twice() {
    let Some(nginx) = Nginx::start() else { return };
    conformance(&nginx, Listener::Keepalive3, N, &[]);
    let entries = nginx.requests(Listener::Keepalive3);
    let most = entries.iter().map(|e| e.connection_requests).max().unwrap_or(0);
    assert_eq!(most, 3, "connections were reused up to nginx's limit and no further");
}

#[test]
fn nginx_rate_limit_429s_with_retry_after_are_waited_out_until_every_record_is_ok() {
    let Some(nginx) = Nginx::start() else { return };
    // Half the usual count: at 20 r/s with a burst of 5, 100 requests already take seconds.
    let run = conformance(&nginx, Listener::Ratelimit, N / 2, &["--retries", "20"]);
    let limited = nginx.requests(Listener::Ratelimit).iter().filter(|e| e.status == 429).count();
    assert!(limited > 0, "the rate limit was hit (else this test proves nothing)");
    let retried = run.records.iter().filter(|r| r["attempts"].as_u64() > Some(1)).count();
    assert!(retried > 0, "{limited} 429s, yet no record was retried");
}

#[test]
fn plain_self_signed_certificate_with_ca_true_is_trusted_when_given_to_cacert() {
    let Some(nginx) = Nginx::start() else { return };
    conformance(&nginx, Listener::TlsSelfSigned, 20, &[]);
}

/// The one record of fetching `url` with `args`, no retries.
fn only_record(url: String, args: &[String]) -> Value {
    let args = [strings(&["--retries", "0"]), args.to_vec()].concat();
    fetch(&[url], &args, Duration::from_secs(30)).records.remove(0)
}

#[test]
fn https_to_a_plain_http_port_is_a_tls_error_that_says_to_use_http() {
    let Some(nginx) = Nginx::start() else { return };
    let port = nginx.port(Listener::H1);
    let r = only_record(
        format!("https://localhost:{port}/small.json"),
        &strings(&["--resolve", &format!("localhost:{port}:127.0.0.1")]),
    );
    assert_eq!(r["error"]["kind"], "tls", "{r}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(
        message.to_lowercase().contains("plain http") && message.contains("http://"),
        "the message says the server answered plain HTTP and to use http://: {message}"
    );
}

#[test]
fn an_untrusted_certificate_is_a_tls_error_that_names_cacert_and_insecure() {
    let Some(nginx) = Nginx::start() else { return };
    let port = nginx.port(Listener::TlsH1);
    let r = only_record(
        nginx.url(Listener::TlsH1, "/small.json"),
        &strings(&["--resolve", &format!("localhost:{port}:127.0.0.1")]),
    );
    assert_eq!(r["error"]["kind"], "tls", "{r}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("--cacert") && (message.contains("-k") || message.contains("--insecure")),
        "the message names --cacert FILE and -k: {message}"
    );
    assert!(!message.contains("InvalidCertificate("), "a sentence, not Rust Debug text: {message}");
}

/// 400 requests for the 64 KiB file through a proxy that stalls connection 0 after `down_bytes`.
fn one_stalled_connection(listener: Listener, down_bytes: u64) {
    let Some(nginx) = Nginx::start() else { return };
    let proxy = FaultProxy::only(nginx.addr(listener), 0, Fault::StallAfter { down_bytes });
    let urls: Vec<String> =
        (0..400).map(|i| nginx.url_at(listener, proxy.port(), &format!("/64k.json?i={i}"))).collect();
    let limits =
        ["-c", "64", "--retries", "2", "--read-timeout", "1s", "--timeout", "10s", "--deadline", "20s"];
    let args = [nginx.args_at(listener, proxy.port()), strings(&limits)].concat();
    let run = fetch(&urls, &args, Duration::from_secs(60));

    assert_no_protocol_error(&nginx);
    let stalled = proxy.connection(0).expect("a connection was made");
    assert_eq!(stalled.down, down_bytes, "connection 0 stalled where it was told to");
    assert_no_wrong_body(&nginx, &run, |_| "64k.json");
    assert_all_ok(&nginx, &run, |_| "64k.json");
    let retried = run.records.iter().filter(|r| r["attempts"].as_u64() > Some(1)).count();
    assert!(retried > 0 && proxy.connections() > 1, "the stalled connection's requests went on another one");
    // Generous for a shared 2-core machine: unhurt, this run takes a second or two plus one
    // read timeout; the bound catches a run that waits out more than one stall.
    assert!(run.elapsed < Duration::from_secs(10), "the run took {:?}", run.elapsed);
}

#[test]
fn one_stalled_h1_connection_costs_only_its_own_request() {
    // 100 kB, not 300: over HTTP/1.1 with 64 connections, connection 0 carries only a few of the
    // 400 responses (about 50 kB each, gzipped), and must be cut inside one of them.
    one_stalled_connection(Listener::H1, 100_000);
}

#[test]
fn one_stalled_h2_connection_costs_only_its_own_streams() {
    one_stalled_connection(Listener::TlsH2, 300_000);
}

/// 50 requests for the 64 KiB file, no retries, through a proxy that resets connection 0 mid-body.
fn reset_mid_body(listener: Listener) {
    let Some(nginx) = Nginx::start() else { return };
    let proxy = FaultProxy::only(nginx.addr(listener), 0, Fault::ResetAfter { down_bytes: 100_000 });
    let urls: Vec<String> =
        (0..50).map(|i| nginx.url_at(listener, proxy.port(), &format!("/64k.json?i={i}"))).collect();
    let args =
        [nginx.args_at(listener, proxy.port()), strings(&["-c", "8", "--retries", "0", "--timeout", "10s"])]
            .concat();
    let run = fetch(&urls, &args, Duration::from_secs(60));

    assert_no_protocol_error(&nginx);
    assert_eq!(proxy.connection(0).map(|c| c.down), Some(100_000), "connection 0 was reset mid-body");
    assert_no_wrong_body(&nginx, &run, |_| "64k.json");
    assert!(run.records.iter().any(|r| r["ok"] == false), "the reset failed a request");
    assert_nginx_counted_no_unrecorded_attempt(&nginx, listener, &run);
}

#[test]
fn a_reset_mid_body_over_h1_is_not_resent_behind_the_records_back() {
    reset_mid_body(Listener::H1);
}

#[test]
fn a_reset_mid_body_over_tls_h1_is_not_resent_behind_the_records_back() {
    reset_mid_body(Listener::TlsH1);
}

#[test]
fn a_reset_mid_body_over_tls_h2_is_not_resent_behind_the_records_back() {
    reset_mid_body(Listener::TlsH2);
}

/// 10 requests, no retries, for a path where nginx reads the request, logs it and closes the
/// connection without answering (`return 444`): the request was read, so sending it again is a
/// second attempt, and the record must say so (or not make it).
fn closed_without_an_answer(listener: Listener) {
    let Some(nginx) = Nginx::start() else { return };
    let urls: Vec<String> = (0..10).map(|i| nginx.url(listener, &format!("/close?i={i}"))).collect();
    let args = [nginx.args(listener), strings(&["-c", "4", "--retries", "0", "--timeout", "10s"])].concat();
    let run = fetch(&urls, &args, Duration::from_secs(60));
    assert!(run.records.iter().all(|r| r["ok"] == false), "no answer is not a success");
    assert_nginx_counted_every_attempt(&nginx, listener, &run);
}

#[test]
fn a_request_nginx_closed_on_over_h1_is_not_resent_behind_the_records_back() {
    closed_without_an_answer(Listener::H1);
}

#[test]
fn a_request_nginx_closed_on_over_tls_h1_is_not_resent_behind_the_records_back() {
    closed_without_an_answer(Listener::TlsH1);
}

// The harness itself: what the tests above rely on nginx and the proxy to do.

/// The head (as text) and the body of a raw HTTP/1.1 answer.
fn split_answer(answer: &[u8]) -> (String, Vec<u8>) {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("a whole head") + 4;
    (String::from_utf8_lossy(&answer[..end]).into_owned(), answer[end..].to_vec())
}

/// The chunks of a chunked body, in order.
fn chunks(mut body: &[u8]) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    loop {
        let eol = body.windows(2).position(|w| w == b"\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&body[..eol]).unwrap(), 16).unwrap();
        if size == 0 {
            return chunks;
        }
        chunks.push(body[eol + 2..eol + 2 + size].to_vec());
        body = &body[eol + 2 + size + 2..];
    }
}

#[test]
fn the_nginx_harness_serves_exact_documents_chunks_gzip_and_retry_after_and_logs_them() {
    let Some(nginx) = Nginx::start() else { return };
    let h1 = nginx.addr(Listener::H1);
    for name in DOCUMENTS.iter().filter(|&&d| d != "chunked.json") {
        let (head, body) = split_answer(&raw_get(h1, &format!("/{name}"), "").unwrap());
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())), "{name} unencoded: {head}");
        assert_eq!(body, nginx.document(name), "{name}");
    }
    assert_eq!(nginx.document("1k.json").len(), 1 << 10);
    assert_eq!(nginx.document("64k.json").len(), 64 << 10);
    assert_eq!(nginx.document("5m.json").len(), 5 << 20);

    let (head, body) = split_answer(&raw_get(h1, "/chunked.json", "").unwrap());
    assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
    let pieces = chunks(&body);
    assert!(pieces.len() > 2, "the body arrives in several chunks: {pieces:?}");
    assert_eq!(pieces.concat(), nginx.document("chunked.json"));

    let (head, body) = split_answer(&raw_get(h1, "/64k.json", "Accept-Encoding: gzip\r\n").unwrap());
    assert!(head.contains("Content-Encoding: gzip\r\n"), "{head}");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&chunks(&body).concat()[..]).read_to_end(&mut plain).unwrap();
    assert_eq!(plain, nginx.document("64k.json"));
    assert_eq!(nginx.requests(Listener::H1).len(), DOCUMENTS.len() + 1, "every request is logged at once");

    let limited = nginx.addr(Listener::Ratelimit);
    let heads: Vec<String> =
        (0..30).map(|_| split_answer(&raw_get(limited, "/small.json", "").unwrap()).0).collect();
    let too_many: Vec<&String> = heads.iter().filter(|h| h.starts_with("HTTP/1.1 429")).collect();
    assert!(!too_many.is_empty(), "30 requests at once exceed 20 r/s with a burst of 5");
    assert!(too_many.iter().all(|h| h.contains("\r\nRetry-After: 1\r\n")), "{too_many:?}");
    assert!(heads.iter().filter(|h| h.starts_with("HTTP/1.1 200")).all(|h| !h.contains("Retry-After")));
    let entries = nginx.requests(Listener::Ratelimit);
    assert_eq!(entries.len(), 30);
    assert_eq!(entries.iter().filter(|e| e.status == 429).count(), too_many.len());
    assert!(nginx.error_log().contains("limiting requests"), "the error log is readable");

    // curl (OpenSSL) accepts both certificates and negotiates what each listener offers; the
    // client is held to the same.
    if let Some(curl) = crate::support::real::require_quietly("curl") {
        for (listener, version) in
            [(Listener::TlsH1, "1.1"), (Listener::TlsH2, "2"), (Listener::TlsSelfSigned, "1.1")]
        {
            let out = std::process::Command::new(&curl)
                .args(["-sS", "-o", "/dev/null", "-w", "%{http_version}"])
                .args(nginx.args(listener))
                .arg(nginx.url(listener, "/small.json"))
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&out.stdout);
            assert_eq!(said, version, "{}: {}", listener.name(), String::from_utf8_lossy(&out.stderr));
        }
    }

    let (pid, port) = (nginx.pid(), nginx.port(Listener::H1));
    drop(nginx);
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    assert_ne!(unsafe { libc::kill(libc::pid_t::try_from(pid).unwrap(), 0) }, 0, "nginx is gone");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "its ports are closed");
}

/// Sends a request for `path` on `tcp` and reads what comes within `wait`: the bytes, and how the
/// reading ended (`None`: the connection was closed cleanly).
fn exchange(tcp: &mut TcpStream, path: &str, wait: Duration) -> (Vec<u8>, Option<ErrorKind>) {
    tcp.set_read_timeout(Some(wait)).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if let Err(e) = tcp.write_all(request.as_bytes()) {
        return (Vec::new(), Some(e.kind()));
    }
    let mut got = Vec::new();
    let mut buf = [0; 16 << 10];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return (got, None),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Some(e.kind())),
        }
    }
}

#[test]
fn the_fault_proxy_passes_resets_stalls_swallows_refuses_and_closes_late_as_told() {
    let Some(nginx) = Nginx::start() else { return };
    let faults = [
        Fault::None,
        Fault::Refuse,
        Fault::Blackhole,
        Fault::ResetAfter { down_bytes: 1000 },
        Fault::StallAfter { down_bytes: 1000 },
        Fault::SlowClose { delay: Duration::from_millis(300) },
    ];
    let proxy = FaultProxy::start(nginx.addr(Listener::H1), move |n| faults[n]);
    let connect = || TcpStream::connect(proxy.addr()).unwrap();
    let short = Duration::from_millis(300);

    let (through, end) = exchange(&mut connect(), "/small.json", Duration::from_secs(5));
    assert_eq!((split_answer(&through).1, end), (nginx.document("small.json"), None));

    let (refused, end) = exchange(&mut connect(), "/small.json", Duration::from_secs(5));
    assert!(refused.is_empty() && end.is_none_or(|e| e == ErrorKind::ConnectionReset), "{end:?}");

    let (swallowed, end) = exchange(&mut connect(), "/small.json", short);
    assert!(
        swallowed.is_empty() && matches!(end, Some(ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "{end:?}"
    );

    let (cut, end) = exchange(&mut connect(), "/64k.json", Duration::from_secs(5));
    assert_eq!((cut.len(), end), (1000, Some(ErrorKind::ConnectionReset)), "reset, not closed");

    let (stalled, end) = exchange(&mut connect(), "/64k.json", short);
    assert_eq!(stalled.len(), 1000);
    assert!(matches!(end, Some(ErrorKind::WouldBlock | ErrorKind::TimedOut)), "still open: {end:?}");

    let start = Instant::now();
    let (late, end) = exchange(&mut connect(), "/small.json", Duration::from_secs(5));
    assert_eq!((split_answer(&late).1, end), (nginx.document("small.json"), None));
    assert!(start.elapsed() >= short, "the close came {:?} after the request", start.elapsed());

    assert_eq!(proxy.connections(), faults.len());
    let down: Vec<u64> = (0..faults.len()).map(|n| proxy.connection(n).unwrap().down).collect();
    assert_eq!(down[..5], [through.len() as u64, 0, 0, 1000, 1000]);
    assert_eq!(proxy.connection(2).unwrap().up, 0, "a black hole forwards nothing");
    assert_eq!(proxy.bytes_down(), down.iter().sum::<u64>());
    assert!(proxy.bytes_up() > 0);
}

/// `-i` keeps nginx's response headers in the record, over HTTP/1.1 and HTTP/2 alike (lower-case
/// names either way); `--keep-header` keeps only those named; without either, none.
#[test]
fn response_headers_from_nginx_are_kept_as_asked() {
    let Some(nginx) = Nginx::start() else { return };
    for listener in [Listener::H1, Listener::TlsH2] {
        let url = nginx.url(listener, "/small.json");
        let all = only_record(url.clone(), &[nginx.args(listener), strings(&["-i"])].concat());
        let headers = &all["headers"];
        assert!(headers["server"].as_str().is_some_and(|s| s.starts_with("nginx")), "{all}");
        assert!(headers["etag"].is_string() && headers["last-modified"].is_string(), "{all}");
        assert_eq!(all["http"], if listener == Listener::H1 { "1.1" } else { "2" }, "{all}");
        let only =
            only_record(url.clone(), &[nginx.args(listener), strings(&["--keep-header", "ETag"])].concat());
        assert_eq!(
            only["headers"].as_object().map(|h| h.keys().collect::<Vec<_>>()),
            Some(vec![&"etag".to_owned()])
        );
        assert!(only_record(url, &nginx.args(listener)).get("headers").is_none());
    }
}

/// `-v` gives one line per attempt — method, URL, protocol, status, time, new or reused
/// connection, what follows — and `-vv` the headers, secrets masked; no colour into a pipe.
#[test]
fn verbose_traces_each_attempt_and_masks_secrets() {
    let Some(nginx) = Nginx::start() else { return };
    let urls: Vec<String> = (0..2).map(|i| nginx.url(Listener::H1, &format!("/small.json?i={i}"))).collect();
    let args = strings(&["-c", "1", "-vv", "-u", "ann:hunter2", "-H", "Cookie: session=s3cret"]);
    let run = fetch(&urls, &args, Duration::from_secs(30));
    let attempts: Vec<&str> =
        run.stderr.lines().filter(|l| l.contains("outofsync::wire") && l.contains(" in ")).collect();
    assert_eq!(attempts.len(), 2, "{}", run.stderr);
    assert!(attempts[0].contains("GET http") && attempts[0].contains("HTTP/1.1 200 OK"), "{}", attempts[0]);
    assert!(
        attempts[0].contains("new connection") && attempts[1].contains("reused connection"),
        "{attempts:?}"
    );
    assert!(attempts.iter().all(|l| l.ends_with("done")), "{attempts:?}");
    assert!(run.stderr.contains("authorization: (masked)") && run.stderr.contains("cookie: (masked)"));
    assert!(run.stderr.contains("< response headers") && run.stderr.contains("server: nginx"));
    assert!(!run.stderr.contains("hunter2") && !run.stderr.contains("s3cret"), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{1b}'), "no ANSI colour when stderr is not a terminal");

    // A retry says why and when.
    let url = nginx.url(Listener::H1, "/close?i=0");
    let run =
        fetch(&[url], &strings(&["-v", "--retries", "1", "--backoff", "10ms"]), Duration::from_secs(30));
    let lines: Vec<&str> = run.stderr.lines().filter(|l| l.contains("outofsync::wire")).collect();
    assert!(lines.iter().any(|l| l.contains("retry in")), "{}", run.stderr);
}

//! The built-in API, endpoint by endpoint, through an independent HTTP client over loopback.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{ServerConfig, get, get_json, http, outofsync, server};

#[test]
fn json_is_small_echoes_its_id_and_pads_to_a_size() {
    let s = server();
    let (status, headers, body) = get(&s.url("/json"));
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    assert!((250..=400).contains(&body.len()), "about 300 bytes, got {}", body.len());
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert!(doc["name"].is_string() && doc["tags"].is_array());

    assert_eq!(get_json(&s.url("/json?id=42")).1["id"], 42);
    assert_eq!(get_json(&s.url("/json?id=abc")).1["id"], "abc");

    for size in [1000, 65_536, 1 << 20] {
        let (_, _, body) = get(&s.url(&format!("/json?size={size}")));
        let doc: Value = serde_json::from_slice(&body).expect("padded documents are JSON");
        assert!(doc["items"].as_array().unwrap().len() > 3);
        assert!(body.len().abs_diff(size) <= 2, "asked {size}, got {}", body.len());
    }
    let (status, refusal) = get_json(&s.url(&format!("/json?size={}", (64 << 20) + 1)));
    assert_eq!(status, 400);
    assert!(refusal["error"].as_str().unwrap().contains("cap"));
}

#[test]
fn items_are_paginated_with_next_and_a_link_header() {
    let s = server();
    let (status, headers, body) = get(&s.url("/items?page=2&per_page=10&total=25"));
    assert_eq!(status, 200);
    let page: Value = serde_json::from_slice(&body).unwrap();
    let ids: Vec<u64> = page["items"].as_array().unwrap().iter().map(|i| i["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (11..=20).collect::<Vec<_>>());
    let next = page["next"].as_str().unwrap();
    assert_eq!(next, s.url("/items?page=3&per_page=10&total=25"));
    assert_eq!(headers["link"].to_str().unwrap(), format!("<{next}>; rel=\"next\""));

    let (_, last) = get_json(next);
    assert_eq!(last["items"].as_array().unwrap().len(), 5);
    assert!(last["next"].is_null());
    assert_eq!(get_json(&s.url("/items?cursor=c3&per_page=10&total=25")).1["page"], 3);
    assert_eq!(get(&s.url("/items?page=3&per_page=10&total=25")).1.get("link"), None);
    assert_eq!(get(&s.url("/items?per_page=0")).0, 400);
    assert_eq!(get(&s.url("/items?page=x")).0, 400);
}

#[test]
fn delay_waits_and_is_capped() {
    let s = server();
    let start = Instant::now();
    let (status, doc) = get_json(&s.url("/delay/200"));
    assert_eq!((status, doc["delay_ms"].as_u64()), (200, Some(200)));
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(get(&s.url("/delay/600001")).0, 400);
    assert_eq!(get(&s.url("/delay/soon")).0, 400);
}

#[test]
fn status_answers_with_the_code_asked_for() {
    let s = server();
    for code in [200, 201, 404, 418, 500, 503] {
        let (status, doc) = get_json(&s.url(&format!("/status/{code}")));
        assert_eq!(status, code);
        assert_eq!(doc["status"], code);
    }
    assert_eq!(get(&s.url("/status/204")).0, 204);
    assert_eq!(get(&s.url("/status/99")).0, 400);
    assert_eq!(get(&s.url("/status/700")).0, 400);
}

#[test]
fn flaky_k_fails_k_times_per_key_then_succeeds() {
    let s = server();
    let url = s.url("/flaky/2?key=a");
    let statuses: Vec<u16> = (0..4).map(|_| get(&url).0).collect();
    assert_eq!(statuses, [503, 503, 200, 200]);
    assert_eq!(get(&s.url("/flaky/2?key=b")).0, 503, "another key has its own count");
    assert_eq!(get(&s.url("/flaky/0?key=c")).0, 200);
}

#[test]
fn flaky_p_is_random_but_seeded() {
    let draws = |seed: u64| {
        let s = ServerConfig::default().seed(seed).start().unwrap();
        (0..40).map(|_| get(&s.url("/flaky?p=0.5")).0).collect::<Vec<_>>()
    };
    let first = draws(7);
    assert_eq!(first, draws(7), "the same seed gives the same sequence");
    assert!(first.contains(&503) && first.contains(&200));
    let s = server();
    assert!((0..10).all(|_| get(&s.url("/flaky?p=0")).0 == 200));
    assert!((0..10).all(|_| get(&s.url("/flaky?p=1")).0 == 503));
    assert_eq!(get(&s.url("/flaky?p=2")).0, 400);
}

#[test]
fn ratelimit_answers_429_with_retry_after_when_exceeded() {
    let s = server();
    let url = s.url("/ratelimit?rps=2");
    let statuses: Vec<(u16, Option<String>)> = (0..4)
        .map(|_| {
            let (status, headers, _) = get(&url);
            (status, headers.get("retry-after").map(|v| v.to_str().unwrap().to_owned()))
        })
        .collect();
    assert_eq!(statuses[0].0, 200);
    assert_eq!(statuses[1].0, 200);
    let limited: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!limited.is_empty(), "a burst over the bucket is refused: {statuses:?}");
    for (_, retry_after) in limited {
        let secs: u64 = retry_after.as_deref().expect("429 carries Retry-After").parse().unwrap();
        assert!(secs >= 1);
    }
}

#[test]
fn redirects_chain_to_json_or_go_anywhere() {
    let s = server();
    let (status, headers, _) = get(&s.url("/redirect/3"));
    assert_eq!(status, 302);
    assert_eq!(headers["location"], "/redirect/2");
    assert_eq!(get(&s.url("/redirect/1")).1["location"], "/json");
    let (status, headers, _) = get(&s.url("/redirect-to?url=file:///etc/passwd&status=307"));
    assert_eq!(status, 307);
    assert_eq!(headers["location"], "file:///etc/passwd");
    assert_eq!(get(&s.url("/redirect-to?url=/x&status=200")).0, 400);

    // Followed by a client, the chain lands on /json.
    let agent: ureq::Agent = ureq::Agent::config_builder().max_redirects(5).build().into();
    let doc: Value = agent.get(s.url("/redirect/3")).call().unwrap().body_mut().read_json().unwrap();
    assert_eq!(doc["id"], 1);
}

#[test]
fn anything_echoes_method_path_query_headers_and_body() {
    let s = server();
    let mut response = http()
        .post(s.url("/anything/deep/path?a=1&a=2&b=x"))
        .header("X-Test", "yes")
        .header("Authorization", "Bearer t0ken")
        .send(r#"{"hello":"world"}"#)
        .unwrap();
    let doc: Value = response.body_mut().read_json().unwrap();
    assert_eq!(doc["method"], "POST");
    assert_eq!(doc["path"], "/anything/deep/path");
    assert_eq!(doc["args"]["a"], serde_json::json!(["1", "2"]));
    assert_eq!(doc["args"]["b"], "x");
    assert_eq!(doc["headers"]["x-test"], "yes");
    assert_eq!(doc["headers"]["authorization"], "Bearer t0ken");
    assert_eq!(doc["json"]["hello"], "world");
    assert_eq!(doc["bytes"], 17);
    let deleted: Value = http().delete(s.url("/anything")).call().unwrap().body_mut().read_json().unwrap();
    assert_eq!(deleted["method"], "DELETE");
}

fn decompress(coding: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out).map(|_| ()),
        "deflate" => flate2::read::ZlibDecoder::new(data).read_to_end(&mut out).map(|_| ()),
        "br" => brotli::Decompressor::new(data, 4096).read_to_end(&mut out).map(|_| ()),
        "zstd" => zstd::stream::read::Decoder::new(data).unwrap().read_to_end(&mut out).map(|_| ()),
        other => panic!("unknown coding {other}"),
    }
    .unwrap_or_else(|e| panic!("{coding} decodes: {e}"));
    out
}

#[test]
fn compressed_endpoints_carry_their_content_encoding() {
    let s = server();
    for (path, coding) in [("/gzip", "gzip"), ("/deflate", "deflate"), ("/brotli", "br"), ("/zstd", "zstd")] {
        let (status, headers, body) = get(&s.url(path));
        assert_eq!(status, 200);
        assert_eq!(headers["content-encoding"], coding);
        let doc: Value = serde_json::from_slice(&decompress(coding, &body)).unwrap();
        assert_eq!(doc["encoding"], coding);
    }
}

#[test]
fn bomb_is_small_on_the_wire_and_decodes_to_its_size() {
    let s = server();
    let size = 20 << 20;
    for coding in ["gzip", "deflate", "br", "zstd"] {
        let (status, headers, body) = get(&s.url(&format!("/bomb?encoding={coding}&size={size}")));
        assert_eq!(status, 200);
        assert_eq!(headers["content-encoding"], coding);
        assert!(body.len() < size / 100, "{coding}: {} bytes on the wire", body.len());
        let decoded = decompress(coding, &body);
        assert_eq!(decoded.len(), size, "{coding}");
        assert!(decoded.starts_with(br#"{"bomb":"AAA"#) && decoded.ends_with(br#"AA"}"#));
    }
    let (_, headers, body) = get(&s.url("/bomb?encoding=gzip,br&size=100000"));
    assert_eq!(headers["content-encoding"], "gzip, br");
    assert_eq!(decompress("gzip", &decompress("br", &body)).len(), 100_000);
    assert_eq!(get(&s.url("/bomb?encoding=lzma")).0, 400);
}

#[test]
fn a_chained_bomb_starts_at_once_and_stops_when_its_client_leaves() {
    // Two codings squeeze 64 GiB into a few kilobytes: unless the server flushes its encoders as
    // it goes, the first byte would wait until the whole bomb was compressed, minutes of a thread.
    let s = server();
    let started = Instant::now();
    let mut response = http().get(&s.url("/bomb?encoding=gzip,gzip&size=68719476736")).call().unwrap();
    let mut first = [0u8; 1024];
    let n = response.body_mut().as_reader().read(&mut first).unwrap();
    assert!(n > 0);
    assert!(started.elapsed() < Duration::from_secs(30), "first bytes after {:?}", started.elapsed());
    drop(response);
    // The client is gone: the server goes on answering (a thread stuck compressing would not).
    for _ in 0..8 {
        assert_eq!(get_json(&s.url("/json")).0, 200);
    }
}

#[test]
fn bytes_are_seeded_and_exact() {
    let s = server();
    let (status, headers, first) = get(&s.url("/bytes/100000"));
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(first.len(), 100_000);
    assert_eq!(get(&s.url("/bytes/100000")).2, first, "same n, same bytes");
    assert_ne!(get(&s.url("/bytes/99999")).2[..1000], first[..1000]);
    assert!(first.iter().any(|&b| b > 127), "random, not text");
}

#[test]
fn drip_sends_bytes_one_at_a_time() {
    let s = server();
    let start = Instant::now();
    let (status, headers, body) = get(&s.url("/drip?bytes=5&interval_ms=40"));
    assert_eq!((status, body.as_slice()), (200, &b"*****"[..]));
    assert_eq!(headers["content-length"], "5");
    assert!(start.elapsed() >= Duration::from_millis(160));
}

#[test]
fn endless_never_ends_but_can_be_read_from() {
    let s = server();
    let response = http().get(s.url("/endless")).call().unwrap();
    let mut reader = response.into_body().into_with_config().limit(u64::MAX).reader();
    let mut buf = vec![0; 4 << 20];
    reader.read_exact(&mut buf).expect("4 MiB of an endless body");
    assert!(buf.iter().all(|&b| b == b'x'));
}

#[test]
fn stats_sees_concurrent_requests_per_host_and_resets() {
    let s = server();
    let threads: Vec<_> = (0..8)
        .map(|n| {
            let url = s.url("/delay/400");
            std::thread::spawn(move || {
                http()
                    .get(&url)
                    .header("Host", if n % 2 == 0 { "a.test" } else { "b.test" })
                    .call()
                    .unwrap()
                    .status()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (_, live) = get_json(&s.url("/stats"));
    assert_eq!(live["in_flight"], 8, "{live}");
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    let (_, stats) = get_json(&s.url("/stats"));
    assert_eq!(stats["in_flight"], 0);
    assert_eq!(stats["max_in_flight"], 8);
    assert_eq!(stats["by_host"]["a.test"]["max_in_flight"], 4);
    assert_eq!(stats["by_host"]["b.test"]["requests"], 4);
    assert_eq!(stats["by_path"]["/delay/400"], 8);
    assert!(stats["by_path"].get("/stats").is_none(), "/stats does not count itself");

    let reset: Value =
        http().post(s.url("/stats/reset")).send_empty().unwrap().body_mut().read_json().unwrap();
    assert_eq!(reset["max_in_flight"], 0);
    assert_eq!(reset["requests"], 0);
    assert_eq!(get(&s.url("/stats/reset")).0, 405);
}

#[test]
fn unknown_paths_and_methods_get_json_errors() {
    let s = server();
    let (status, headers, body) = get(&s.url("/nope"));
    assert_eq!(status, 404);
    assert_eq!(headers["content-type"], "application/json");
    assert!(serde_json::from_slice::<Value>(&body).unwrap()["error"].as_str().unwrap().contains("/nope"));
    let mut response = http().post(s.url("/json")).send_empty().unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    assert!(response.body_mut().read_json::<Value>().is_ok());
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served() {
    use http_body_util::{BodyExt, Empty};
    let s = server();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Empty<bytes::Bytes>>();
    let response = client.get(s.url("/json?id=9").parse().unwrap()).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["id"], 9);
}

#[test]
fn serve_prints_its_address_serves_and_stops_cleanly_on_sigterm() {
    let (child, first) = crate::support::spawn_first_line(&["serve", "--port", "0", "--threads", "1"]);
    let base = first.trim().strip_prefix("listening on ").expect("first line names the address").to_owned();
    assert!(base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"), "{base}");
    assert_eq!(get_json(&format!("{base}/json?id=5")).1["id"], 5);

    // A request in flight when SIGTERM comes still gets its answer.
    let slow = {
        let url = format!("{base}/delay/500");
        std::thread::spawn(move || get(&url).0)
    };
    std::thread::sleep(Duration::from_millis(150));
    crate::support::signal(&child, libc::SIGTERM);
    assert_eq!(slow.join().unwrap(), 200);
    let (code, err) = crate::support::finish(child, Duration::from_secs(10));
    assert_eq!(code, Some(0), "serve stops cleanly: {err}");
    assert!(!err.contains("panic"), "{err}");
    // Nothing listens any more.
    assert!(std::net::TcpStream::connect(base.trim_start_matches("http://")).is_err());
    let _ = std::io::stdout().flush();
}

#[test]
fn serve_help_keeps_each_path_placeholder_on_its_line() {
    let help = outofsync().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("Seed of /flaky?p= and /bytes/{count}, so that runs repeat"), "{help}");
    assert!(help.lines().any(|l| l.contains("/redirect/{count}") && l.contains("redirects, then /json")));
    assert!(help.lines().any(|l| l.contains("/bytes/{count}") && l.contains("pseudo-random bytes")));
}

#[test]
fn ratelimit_kinds_keep_their_keys_apart_and_state_their_limit_in_headers() {
    let s = server();
    // A fixed window of 3 a second: the 4th is told to wait for the window's end.
    let window = |key: &str| s.url(&format!("/ratelimit?kind=window&rps=3&key={key}&headers=ietf"));
    let answers: Vec<_> = (0..4).map(|_| get(&window("w1"))).collect();
    assert_eq!(answers.iter().map(|a| a.0).collect::<Vec<_>>(), [200, 200, 200, 429]);
    let (_, headers, _) = &answers[3];
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["ratelimit-policy"], "\"default\";q=3;w=1");
    assert!(headers["ratelimit"].to_str().unwrap().starts_with("\"default\";r=0;t="), "{headers:?}");
    assert_eq!(get(&window("w2")).0, 200, "another key has a limit of its own");
    // ra=0: a 429 without Retry-After; headers=x: GitHub's fields.
    let url = s.url("/ratelimit?rps=1&burst=1&ra=0&headers=x&key=x");
    assert_eq!(get(&url).0, 200);
    let (status, headers, _) = get(&url);
    assert_eq!(status, 429);
    assert!(headers.get("retry-after").is_none());
    assert_eq!(
        (&headers["x-ratelimit-limit"], &headers["x-ratelimit-remaining"]),
        (&"1".parse().unwrap(), &"0".parse().unwrap())
    );
    for bad in ["kind=leaky", "window=0", "headers=yes", "schedule=1", "ms=600000"] {
        assert_eq!(get(&s.url(&format!("/ratelimit?{bad}"))).0, 400, "{bad}");
    }
    // The server-side truth, per second.
    let (_, truth) = get_json(&s.url("/stats?key=w1"));
    let second = &truth["seconds"][0];
    assert_eq!((second["ok"].as_u64(), second["throttled"].as_u64()), (Some(3), Some(1)), "{truth}");
}

#[test]
fn capacity_serves_with_its_workers_queues_in_order_and_turns_away_beyond() {
    let s = server();
    // 2 workers of 300 ms and a queue of 1: of 4 requests at once, 2 are served, 1 waits for a
    // worker (and is served 300 ms later), and 1 is turned away at once.
    let url = s.url("/capacity?c=2&queue=1&ms=300&key=q");
    let started = std::time::Instant::now();
    let answers: Vec<(u16, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|n| {
                let url = url.clone();
                scope.spawn(move || {
                    std::thread::sleep(Duration::from_millis(40 * n));
                    let status = get(&url).0;
                    (status, started.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [200, 200, 200, 503], "{answers:?}");
    assert!(answers[2].1 >= Duration::from_millis(590), "the third waited for a worker: {answers:?}");
    assert!(answers[3].1 < Duration::from_millis(300), "the fourth was turned away at once: {answers:?}");
    let (_, truth) = get_json(&s.url("/stats?key=q"));
    let seconds = truth["seconds"].as_array().unwrap();
    let sum = |field: &str| seconds.iter().map(|x| x[field].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("ok"), sum("unavailable")), (3, 1), "{truth}");
    assert_eq!(seconds[0]["max_in_flight"], 4);
    assert!(seconds[0]["p50_ms"].as_f64().unwrap() >= 299.0, "{truth}");
    // A share of random errors, whatever the load.
    let flaky = s.url("/capacity?c=50&ms=1&err=1&key=e");
    assert_eq!(get(&flaky).0, 503);
    assert_eq!(get(&s.url("/capacity?c=2&err=2")).0, 400);
}

//! The request machine alone: no runtime, no socket, no clock but the instants the tests pass.
//! Every rule of a request's life — retries, backoff, `Retry-After`, cooldowns, redirects,
//! deadlines, stale connections, pagination — checked step by step.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::header::{HeaderValue, LINK, RETRY_AFTER};
use http::{HeaderMap, Method, StatusCode};

use super::*;
use crate::engine::config::RetryPolicy;
use crate::engine::paginate::Paginate;

fn config() -> Config {
    Config {
        retry: RetryPolicy { backoff: Duration::from_millis(100), ..RetryPolicy::default() },
        ..Config::default()
    }
}

fn request<'c>(config: &'c Config, method: Method, url: &str) -> Request<'c> {
    Request::new(config, 0, RequestSpec::new(method, url).unwrap().into()).unwrap()
}

fn answer(status: u16, headers: &[(http::HeaderName, &'static str)]) -> Event {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(name.clone(), HeaderValue::from_static(value));
    }
    let status = StatusCode::from_u16(status).unwrap();
    let wire = Wire { version: Some(http::Version::HTTP_2), ..Wire::default() };
    Event::Exchanged(
        Ok(Exchanged::Response(Response { status, headers: map, body: br#"{"a":1}"#.to_vec() })),
        wire,
    )
}

fn failure(kind: ErrorKind) -> Event {
    Event::Exchanged(Err(Failure::new(kind, "it broke")), Wire::default())
}

fn redirect(status: u16, location: &'static str) -> Event {
    let status = StatusCode::from_u16(status).unwrap();
    let location = HeaderValue::from_static(location);
    Event::Exchanged(Ok(Exchanged::Redirect { status, location }), Wire::default())
}

/// Starts `request` at `t` and gives it its turn: the step that asks to send.
fn send(request: &mut Request<'_>, t: Instant) -> Step {
    let turn = request.step(Event::Start, t);
    assert!(matches!(turn, Step::Turn { until: None }), "{turn:?}");
    request.step(Event::Turn, t)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_success_ends_at_once_with_its_record() {
    let config = config();
    let t = Instant::now();
    let mut r = request(&config, Method::GET, "http://a.test/x");
    assert_eq!(send(&mut r, t), Step::Send { budget: config.timeout });
    assert_eq!(r.step(answer(200, &[]), t + ms(30)), Step::Done { cool_down: None });
    let Finished { record, next, .. } = r.finish(t + ms(30));
    assert!(record.ok && next.is_none());
    assert_eq!((record.status, record.attempts, record.http), (Some(200), 1, Some(http::Version::HTTP_2)));
    assert_eq!(record.elapsed_ms, 30.0);
    assert_eq!(record.json_str(), Some(r#"{"a":1}"#));
    assert_eq!(record.url.as_deref(), Some("http://a.test/x"));
}

#[test]
fn failures_worth_another_try_wait_a_jittered_backoff_under_its_cap() {
    let config = config();
    let t = Instant::now();
    for (event, ceiling) in [(answer(503, &[]), 100), (failure(ErrorKind::Timeout), 100)] {
        let mut r = request(&config, Method::GET, "http://a.test/x");
        send(&mut r, t);
        let Step::Wait { until, cool_down: None } = r.step(event, t + ms(5)) else { panic!("a retry") };
        assert!(until >= t + ms(5) && until <= t + ms(5 + ceiling));
        assert_eq!(r.record().history.len(), 1);
        assert!(matches!(r.step(Event::Waited, until), Step::Turn { until: Some(_) }));
        assert!(matches!(r.step(Event::Turn, until), Step::Send { .. }));
        assert_eq!(r.record().attempts, 2);
    }
    // The third failure is the last (two retries by default), and the message says so.
    let mut r = request(&config, Method::GET, "http://a.test/x");
    let mut now = t;
    send(&mut r, now);
    for _ in 0..2 {
        let Step::Wait { until, .. } = r.step(answer(502, &[]), now) else { panic!("a retry") };
        now = until;
        r.step(Event::Waited, now);
        r.step(Event::Turn, now);
    }
    assert_eq!(r.step(answer(502, &[]), now), Step::Done { cool_down: None });
    let record = r.finish(now).record;
    assert_eq!((record.attempts, record.history.len(), record.ok), (3, 2, false));
    assert_eq!(record.error.unwrap().message, "502 Bad Gateway (after 3 attempts)");
    assert!(record.history.iter().all(|a| a.status == Some(502)));
}

#[test]
fn the_backoff_doubles_with_each_retry_and_spreads_over_its_whole_range() {
    let policy = RetryPolicy { backoff: ms(100), max_backoff: ms(1000), ..RetryPolicy::default() };
    for (retry, ceiling) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (6, 1000)] {
        let draws: Vec<Duration> = (0..400).map(|_| policy.backoff(retry)).collect();
        let (min, max) = (draws.iter().min().unwrap(), draws.iter().max().unwrap());
        let mean = draws.iter().sum::<Duration>() / 400;
        assert!(*max <= ms(ceiling) && *max > ms(ceiling).mul_f64(0.9) && *min < ms(ceiling).mul_f64(0.1));
        assert!(
            mean > ms(ceiling).mul_f64(0.4) && mean < ms(ceiling).mul_f64(0.6),
            "retry {retry}: {mean:?}"
        );
    }
}

#[test]
fn retry_after_is_a_floor_for_the_wait_and_cools_the_origin_down() {
    let config = config();
    let t = Instant::now();
    let mut r = request(&config, Method::GET, "http://a.test/x");
    send(&mut r, t);
    let step = r.step(answer(429, &[(RETRY_AFTER, "7")]), t);
    assert_eq!(step, Step::Wait { until: t + ms(7000), cool_down: Some(t + ms(7000)) });

    // No retries left: the origin still cools down.
    let config = Config { retry: RetryPolicy { retries: 0, ..config.retry }, ..config };
    let mut r = request(&config, Method::GET, "http://a.test/x");
    send(&mut r, t);
    assert_eq!(r.step(answer(503, &[(RETRY_AFTER, "3")]), t), Step::Done { cool_down: Some(t + ms(3000)) });

    // Over --max-retry-after: no retry, no cooldown, and the message says why.
    let config = self::config();
    let mut r = request(&config, Method::GET, "http://a.test/x");
    send(&mut r, t);
    assert_eq!(r.step(answer(429, &[(RETRY_AFTER, "120")]), t), Step::Done { cool_down: None });
    let message = r.finish(t).record.error.unwrap().message;
    assert!(message.contains("asked to wait 2m, over --max-retry-after 1m"), "{message}");
}

#[test]
fn only_idempotent_methods_are_retried_unless_asked() {
    let t = Instant::now();
    for (method, non_idempotent, retried) in [
        (Method::POST, false, false),
        (Method::PATCH, false, false),
        (Method::PUT, false, true),
        (Method::DELETE, false, true),
        (Method::POST, true, true),
    ] {
        let mut config = config();
        config.retry.non_idempotent = non_idempotent;
        let mut r = request(&config, method.clone(), "http://a.test/x");
        send(&mut r, t);
        let step = r.step(failure(ErrorKind::Io), t);
        assert_eq!(matches!(step, Step::Wait { .. }), retried, "{method} (non-idempotent: {non_idempotent})");
    }
}

#[test]
fn the_deadline_runs_from_the_first_turn_and_bounds_every_attempt_and_wait() {
    let config = Config { deadline: ms(10_000), ..config() };
    let t = Instant::now();
    let mut r = request(&config, Method::GET, "http://a.test/x");
    // Queued for 5 s before the first turn: not counted.
    assert_eq!(r.step(Event::Start, t), Step::Turn { until: None });
    assert_eq!(r.step(Event::Turn, t + ms(5000)), Step::Send { budget: ms(10_000) });
    let start = t + ms(5000);
    let Step::Wait { until, .. } = r.step(failure(ErrorKind::Timeout), start + ms(6000)) else { panic!() };
    // The next turn may wait until the deadline, and the attempt gets what is left of it.
    assert_eq!(r.step(Event::Waited, until), Step::Turn { until: Some(start + ms(10_000)) });
    let Step::Send { budget } = r.step(Event::Turn, until) else { panic!() };
    assert_eq!(budget, (start + ms(10_000)).saturating_duration_since(until));
    assert_eq!(r.step(Event::TimedOut(Wire::default()), start + ms(10_000)), Step::Done { cool_down: None });
    let record = r.finish(start + ms(10_000)).record;
    let error = record.error.unwrap();
    assert_eq!((error.kind, record.attempts), (ErrorKind::Timeout, 2));
    assert!(error.message.contains("--deadline of 10s"), "{}", error.message);
    assert_eq!(record.elapsed_ms, 10_000.0);

    // No turn before the deadline.
    let mut r = request(&config, Method::GET, "http://a.test/x");
    send(&mut r, t);
    let Step::Wait { until, .. } = r.step(failure(ErrorKind::Io), t) else { panic!() };
    r.step(Event::Waited, until);
    assert_eq!(r.step(Event::NoTurn, t + ms(10_000)), Step::Done { cool_down: None });
    assert!(r.finish(t + ms(10_000)).record.error.unwrap().message.contains("--deadline"));

    // A wait that would pass the deadline is not begun.
    let mut r = request(&config, Method::GET, "http://a.test/x");
    send(&mut r, t);
    assert_eq!(
        r.step(answer(503, &[(RETRY_AFTER, "20")]), t),
        Step::Done { cool_down: Some(t + ms(20_000)) }
    );
    let message = r.finish(t).record.error.unwrap().message;
    assert!(message.contains("no retry: waiting 20s would pass the --deadline"), "{message}");

    // An attempt that times out on its own --timeout says so.
    let config = Config { timeout: ms(2000), ..self::config() };
    let mut r = request(&config, Method::GET, "http://a.test/x");
    assert_eq!(send(&mut r, t), Step::Send { budget: ms(2000) });
    let Step::Wait { .. } = r.step(Event::TimedOut(Wire::default()), t + ms(2000)) else { panic!() };
    assert_eq!(r.record().history[0].error, Some(ErrorKind::Timeout));
}

#[test]
fn a_redirect_continues_the_attempt_on_a_new_hop_and_a_retry_resends_the_hop_that_failed() {
    let config = config();
    let t = Instant::now();
    let mut r = request(&config, Method::POST, "http://a.test/from");
    send(&mut r, t);
    assert!(matches!(r.step(redirect(302, "http://b.test/to"), t), Step::Turn { .. }));
    assert_eq!((r.hop().method.clone(), r.hop().url.as_str()), (Method::GET, "http://b.test/to"));
    assert_eq!(r.record().attempts, 1);
    r.step(Event::Turn, t);
    let Step::Wait { until, .. } = r.step(answer(503, &[]), t) else { panic!("GET is retried") };
    r.step(Event::Waited, until);
    r.step(Event::Turn, until);
    assert_eq!(r.hop().url.as_str(), "http://b.test/to", "the retry goes to the hop that failed");
    r.step(answer(200, &[]), until);
    let record = r.finish(until).record;
    assert_eq!((record.attempts, record.redirects, record.ok), (2, 1, true));
    assert_eq!(record.url.as_deref(), Some("http://a.test/from"));
    assert_eq!(record.final_url.as_deref(), Some("http://b.test/to"));

    // A loop is refused.
    let mut r = request(&config, Method::GET, "http://a.test/a");
    send(&mut r, t);
    r.step(redirect(302, "/b"), t);
    r.step(Event::Turn, t);
    assert_eq!(r.step(redirect(302, "/a"), t), Step::Done { cool_down: None });
    let error = r.finish(t).record.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Redirect);
    assert!(error.message.contains("redirect loop"), "{}", error.message);
}

#[test]
fn credentials_do_not_follow_a_redirect_to_another_origin() {
    let config = config();
    let t = Instant::now();
    let mut spec = RequestSpec::get("https://a.test/x").unwrap();
    spec.headers.insert(http::header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
    let mut r = Request::new(&config, 0, spec.into()).unwrap();
    send(&mut r, t);
    r.step(redirect(301, "/y"), t);
    assert!(r.hop().headers.contains_key(http::header::AUTHORIZATION), "same origin");
    r.step(Event::Turn, t);
    r.step(redirect(301, "https://b.test/z"), t);
    assert!(!r.hop().headers.contains_key(http::header::AUTHORIZATION), "another origin");
}

#[test]
fn history_keeps_the_latest_attempts() {
    let mut config = config();
    config.retry.retries = 40;
    config.retry.max_backoff = ms(1);
    let t = Instant::now();
    let mut r = request(&config, Method::GET, "http://a.test/x");
    send(&mut r, t);
    while let Step::Wait { until, .. } = r.step(answer(502, &[]), t) {
        r.step(Event::Waited, until);
        r.step(Event::Turn, until);
    }
    let record = r.finish(t).record;
    assert_eq!((record.attempts, record.history.len()), (41, Record::HISTORY_LIMIT));
}

#[test]
fn a_send_on_a_stale_connection_is_counted_and_shown_but_is_no_retry() {
    let config = Config { retry: RetryPolicy { retries: 1, ..config().retry }, ..config() };
    let t = Instant::now();
    let stale = || {
        let failure =
            Failure::new(ErrorKind::Io, "the connection closed before the response head was complete");
        Wire {
            resent: Some(Resent { failure, elapsed: ms(1) }),
            version: Some(http::Version::HTTP_11),
            reused: false,
        }
    };
    let mut r = request(&config, Method::GET, "http://a.test/x");
    send(&mut r, t);
    let Event::Exchanged(outcome, _) = answer(503, &[]) else { unreachable!() };
    let Step::Wait { until, .. } = r.step(Event::Exchanged(outcome, stale()), t) else {
        panic!("one retry left")
    };
    r.step(Event::Waited, until);
    r.step(Event::Turn, until);
    let Event::Exchanged(outcome, _) = answer(200, &[]) else { unreachable!() };
    r.step(Event::Exchanged(outcome, stale()), until);
    let record = r.finish(until).record;
    assert!(record.ok);
    assert_eq!(record.attempts, 4, "two sends on stale connections, two answered");
    let stale: Vec<_> = record.history.iter().map(|a| (a.stale_connection, a.status)).collect();
    assert_eq!(stale, [(true, None), (false, Some(503)), (true, None)]);
    assert_eq!(record.http, Some(http::Version::HTTP_11));
}

#[test]
fn the_unsafe_send_hook_runs_once_before_the_first_send_and_can_stop_it() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let hook = {
        let calls = calls.clone();
        crate::engine::SendHook::new(move |i| {
            calls.lock().unwrap().push(i);
            if i == 9 { Err("disk full".to_owned()) } else { Ok(()) }
        })
    };
    let config = Config {
        retry: RetryPolicy { non_idempotent: true, ..config().retry },
        before_unsafe_send: Some(hook),
        ..config()
    };
    let t = Instant::now();
    let mut post =
        Request::new(&config, 4, RequestSpec::new(Method::POST, "http://a.test/").unwrap().into()).unwrap();
    send(&mut post, t);
    let Step::Wait { until, .. } = post.step(answer(503, &[]), t) else { panic!() };
    post.step(Event::Waited, until);
    assert!(matches!(post.step(Event::Turn, until), Step::Send { .. }));
    let mut get = Request::new(&config, 5, RequestSpec::get("http://a.test/").unwrap().into()).unwrap();
    send(&mut get, t);
    assert_eq!(*calls.lock().unwrap(), [4], "once per request, never for a GET");

    let mut refused =
        Request::new(&config, 9, RequestSpec::new(Method::POST, "http://a.test/").unwrap().into()).unwrap();
    assert_eq!(send(&mut refused, t), Step::Done { cool_down: None });
    let record = refused.finish(t).record;
    assert_eq!((record.attempts, record.error_kind()), (0, Some(ErrorKind::Io)));
    assert!(record.error.unwrap().message.contains("disk full"));
}

#[test]
fn input_that_is_no_request_is_its_record_at_once() {
    let config = config();
    let invalid = crate::request::InvalidInput::new("bad URL").at_line(3);
    let record = Request::new(&config, 7, invalid.into()).unwrap_err();
    assert_eq!((record.i, record.line, record.attempts), (7, Some(3), 0));
    assert_eq!(record.error_kind(), Some(ErrorKind::InvalidRequest));

    let spec = Box::new(RequestSpec::get("http://a.test/x").unwrap());
    let error = RecordError::new(ErrorKind::Io, "not sent: it was sent before");
    let record = Request::new(&config, 8, Input::Unsent { spec, page: Some(2), error }).unwrap_err();
    assert_eq!((record.url.as_deref(), record.page), (Some("http://a.test/x"), Some(2)));
}

#[test]
#[should_panic(expected = "does not answer")]
fn an_event_that_answers_no_step_is_a_drivers_bug() {
    let config = config();
    let mut r = request(&config, Method::GET, "http://a.test/x");
    r.step(Event::Start, Instant::now());
    r.step(Event::Waited, Instant::now());
}

#[test]
fn a_page_names_the_next_and_a_walk_ends_at_a_loop_or_the_page_limit() {
    let config = Config { paginate: Some(Paginate::Link), max_pages: 3, ..config() };
    let t = Instant::now();
    let spec = RequestSpec::get("http://a.test/items?page=1").unwrap();
    let (mut walk, input) = Walk::start(spec, 0, config.max_pages);
    let mut r = Request::new(&config, 0, input).unwrap();
    send(&mut r, t);
    r.step(answer(200, &[(LINK, r#"</items?page=2>; rel="next""#)]), t);
    let Finished { record, next, .. } = r.finish(t);
    assert_eq!(record.page, Some(0));
    assert_eq!(record.next.as_deref(), Some("http://a.test/items?page=2"));
    let NextPage::Fetch(Input::Page { spec, page: 1 }) = walk.after(0, next) else { panic!("page 1") };
    assert_eq!(spec.url.as_str(), "http://a.test/items?page=2");
    // Back to the first page: the walk would loop.
    let NextPage::Loop(record) = walk.after(0, Some(url::Url::parse("http://a.test/items?page=1").unwrap()))
    else {
        panic!("a loop")
    };
    assert_eq!((record.page, record.error_kind()), (Some(2), Some(ErrorKind::Redirect)));
    // At the page limit the walk ends.
    let (mut walk, _) = Walk::start(RequestSpec::get("http://a.test/p").unwrap(), 2, 3);
    assert!(matches!(walk.after(0, Some(url::Url::parse("http://a.test/q").unwrap())), NextPage::End));
}

#[test]
fn credentials_in_the_url_become_basic_authentication_and_leave_the_url() {
    let config = config();
    let t = Instant::now();
    let mut r = request(&config, Method::GET, "http://ann:s%40cret@a.test/x");
    assert_eq!(r.hop().url.as_str(), "http://a.test/x");
    let auth = r.hop().headers.get(http::header::AUTHORIZATION).unwrap();
    assert_eq!(auth.to_str().unwrap(), "Basic YW5uOnNAY3JldA==", "ann:s@cret, decoded");
    send(&mut r, t);
    r.step(answer(200, &[]), t);
    let line = r.finish(t).record.to_json_line();
    assert!(!line.contains("cret") && !line.contains("ann"), "{line}");
}

#[test]
fn response_headers_are_kept_as_asked_with_repeated_names_as_arrays() {
    let t = Instant::now();
    let event = || {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.append(http::header::SET_COOKIE, HeaderValue::from_static("a=1"));
        headers.append(http::header::SET_COOKIE, HeaderValue::from_static("b=2"));
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("41"));
        let response = Response { status: StatusCode::OK, headers, body: b"{}".to_vec() };
        Event::Exchanged(Ok(Exchanged::Response(response)), Wire::default())
    };
    let line = |keep: KeepHeaders| {
        let config = Config { keep_headers: keep, ..config() };
        let mut r = request(&config, Method::GET, "http://a.test/x");
        send(&mut r, t);
        r.step(event(), t);
        let line = r.finish(t).record.to_json_line();
        serde_json::from_str::<serde_json::Value>(&line).unwrap()
    };
    assert!(line(KeepHeaders::None).get("headers").is_none());
    let all = line(KeepHeaders::All);
    assert_eq!(all["headers"]["content-type"], "application/json");
    assert_eq!(all["headers"]["set-cookie"], serde_json::json!(["a=1", "b=2"]));
    assert_eq!(all["headers"]["x-ratelimit-remaining"], "41");
    let only = line(KeepHeaders::Only(vec![http::HeaderName::from_static("x-ratelimit-remaining")]));
    assert_eq!(only["headers"], serde_json::json!({"x-ratelimit-remaining": "41"}));
}

#[derive(Debug)]
struct NoStore;

impl crate::engine::conditional::ValidatorStore for NoStore {
    fn get(&self, _: &crate::engine::conditional::Key) -> Option<Validators> {
        None
    }
    fn put(&self, _: &crate::engine::conditional::Key, _: &Validators) {}
}

fn keeping(paginate: Option<Paginate>) -> Config {
    Config { validators: Some(Arc::new(NoStore)), paginate, ..config() }
}

#[test]
fn a_conditional_request_answered_304_is_ok_not_modified_and_keeps_its_validators() {
    let config = keeping(None);
    let t = Instant::now();
    let mut r = request(&config, Method::GET, "http://a.test/x");
    let sent = Validators { etag: Some("\"v1\"".into()), last_modified: None, next: None };
    r.condition(sent.clone());
    assert_eq!(r.hop().headers[http::header::IF_NONE_MATCH], "\"v1\"");
    assert!(!r.hop().headers.contains_key(http::header::IF_MODIFIED_SINCE));
    send(&mut r, t);
    let modified = (http::header::LAST_MODIFIED, "Thu, 01 Jan 2026 00:00:00 GMT");
    assert_eq!(r.step(answer(304, &[modified]), t), Step::Done { cool_down: None });
    let Finished { record, validators, .. } = r.finish(t);
    assert!(record.ok && record.not_modified && record.error.is_none());
    assert_eq!((record.status, record.json_str()), (Some(304), None));
    let kept = validators.unwrap();
    assert_eq!(kept.etag, sent.etag);
    assert_eq!(
        kept.last_modified.as_deref(),
        Some("Thu, 01 Jan 2026 00:00:00 GMT"),
        "the 304's date is newer"
    );
}

#[test]
fn a_304_to_a_request_sent_without_validators_is_a_status_like_any_other() {
    let config = keeping(None);
    let t = Instant::now();
    let mut r = request(&config, Method::GET, "http://a.test/x");
    send(&mut r, t);
    r.step(answer(304, &[]), t);
    let Finished { record, validators, .. } = r.finish(t);
    assert!(!record.ok && !record.not_modified);
    assert_eq!(record.error_kind(), Some(ErrorKind::HttpStatus));
    assert_eq!(validators, None);
}

#[test]
fn a_changed_response_hands_back_its_new_validators_and_a_walk_goes_on_from_a_304() {
    let config = keeping(None);
    let t = Instant::now();
    let mut r = request(&config, Method::GET, "http://a.test/x");
    r.condition(Validators { etag: Some("\"v1\"".into()), ..Validators::default() });
    send(&mut r, t);
    r.step(answer(200, &[(http::header::ETAG, "\"v2\"")]), t);
    let Finished { record, validators, .. } = r.finish(t);
    assert!(record.ok && !record.not_modified && record.json_str().is_some());
    assert_eq!(validators.unwrap().etag.as_deref(), Some("\"v2\""));

    let mut r = request(&config, Method::GET, "http://a.test/x");
    r.condition(Validators { etag: Some("\"v1\"".into()), ..Validators::default() });
    send(&mut r, t);
    r.step(answer(200, &[]), t);
    assert_eq!(r.finish(t).validators, Some(Validators::default()), "none now: forget the old ones");

    let config = keeping(Some(Paginate::Link));
    let mut r = request(&config, Method::GET, "http://a.test/x");
    let stored = Validators {
        etag: Some("\"p0\"".into()),
        last_modified: None,
        next: Some("http://a.test/x?page=2".into()),
    };
    r.condition(stored);
    send(&mut r, t);
    r.step(answer(304, &[]), t);
    let Finished { record, next, .. } = r.finish(t);
    assert!(record.not_modified);
    assert_eq!(next.unwrap().as_str(), "http://a.test/x?page=2", "the next page the stored response named");
}

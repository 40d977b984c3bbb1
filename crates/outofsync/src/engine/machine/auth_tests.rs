//! The machine's part in authentication, step by step: credentials asked for after each turn and
//! before each send, the one send again after a `401` (counted, not a retry), an `auth` failure
//! that ends a request unsent, and credentials dropped for good when a redirect leaves the origin.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{AUTHORIZATION, HeaderValue};
use http::{HeaderMap, Method, StatusCode};

use super::*;
use crate::auth::{Auth, AuthClient, AuthError, AuthFuture, Bearer, Credentials, OAuth2};
use crate::engine::RetryPolicy;

fn config(auth: impl Auth + 'static) -> Config {
    Config { auth: Some(Arc::new(auth)), ..Config::default() }
}

/// A provider that refreshes (the machine only asks whether it does).
fn refreshing() -> Config {
    config(OAuth2::client_credentials("http://auth.test/token".parse().unwrap(), "id", "secret"))
}

fn answer(status: u16) -> Event {
    let status = StatusCode::from_u16(status).unwrap();
    let response = Response { status, headers: HeaderMap::new(), body: b"{}".to_vec() };
    Event::Exchanged(Ok(Exchanged::Response(response)), Wire::default())
}

fn token(version: u64) -> Credentials {
    Credentials::bearer(&format!("t{version}")).unwrap().with_version(version).query("key", "k")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn credentials_are_asked_for_after_the_turn_and_go_only_on_the_wire() {
    let config = refreshing();
    let t = Instant::now();
    let mut r = Request::new(&config, 0, RequestSpec::get("http://a.test/x?q=1").unwrap().into()).unwrap();
    assert!(matches!(r.step(Event::Start, t), Step::Turn { until: None }));
    let until = t + config.deadline;
    assert_eq!(r.step(Event::Turn, t), Step::Authorize { until, refresh: false });
    assert_eq!(r.record().attempts, 0, "asking for credentials is not a send");
    assert!(matches!(r.step(Event::Authorized(Some(token(1))), t), Step::Send { .. }));
    let wire = r.outgoing();
    assert_eq!(wire.headers[AUTHORIZATION], "Bearer t1");
    assert_eq!(wire.url.as_str(), "http://a.test/x?q=1&key=k");
    assert!(r.hop().headers.get(AUTHORIZATION).is_none() && r.hop().url.query() == Some("q=1"));
    assert_eq!(r.step(answer(200), t + ms(5)), Step::Done { cool_down: None });
    let record = r.finish(t + ms(5)).record;
    assert_eq!(record.url.as_deref(), Some("http://a.test/x?q=1"));
    assert!(record.ok && record.attempts == 1);
}

#[test]
fn a_401_with_refreshable_credentials_is_sent_once_more_and_is_not_a_retry() {
    let config = Config { retry: RetryPolicy { retries: 0, ..RetryPolicy::default() }, ..refreshing() };
    let t = Instant::now();
    let mut r = Request::new(&config, 0, RequestSpec::get("http://a.test/x").unwrap().into()).unwrap();
    r.step(Event::Start, t);
    r.step(Event::Turn, t);
    r.step(Event::Authorized(Some(token(1))), t);
    // The 401: new credentials for the refused ones, asked for with a turn again.
    assert!(matches!(r.step(answer(401), t + ms(3)), Step::Turn { until: Some(_) }));
    let Step::Authorize { refresh: true, .. } = r.step(Event::Turn, t + ms(3)) else { panic!("a refresh") };
    assert_eq!(r.credentials().map(Credentials::version), Some(1), "the refused ones are at hand");
    assert!(matches!(r.step(Event::Authorized(Some(token(2))), t + ms(4)), Step::Send { .. }));
    assert_eq!(r.outgoing().headers[AUTHORIZATION], "Bearer t2");
    assert_eq!(r.step(answer(200), t + ms(6)), Step::Done { cool_down: None });
    let record = r.finish(t + ms(6)).record;
    // No retries were allowed, and the request still went out twice: the replay is no retry.
    assert!(record.ok);
    assert_eq!((record.attempts, record.history.len()), (2, 1));
    assert_eq!((record.history[0].status, record.history[0].elapsed_ms), (Some(401), 3.0));
}

#[test]
fn a_second_401_ends_the_request_and_says_the_new_credentials_were_refused_too() {
    let config = refreshing();
    let t = Instant::now();
    let mut r = Request::new(&config, 0, RequestSpec::get("http://a.test/x").unwrap().into()).unwrap();
    r.step(Event::Start, t);
    r.step(Event::Turn, t);
    r.step(Event::Authorized(Some(token(1))), t);
    r.step(answer(401), t);
    r.step(Event::Turn, t);
    r.step(Event::Authorized(Some(token(2))), t);
    assert_eq!(r.step(answer(401), t), Step::Done { cool_down: None });
    let record = r.finish(t).record;
    let error = record.error.unwrap();
    assert_eq!((error.kind, record.attempts), (ErrorKind::HttpStatus, 2));
    assert_eq!(
        error.message,
        "401 Unauthorized (after 2 attempts); the server refused the refreshed credentials too"
    );
}

#[test]
fn fixed_credentials_are_not_sent_again_after_a_401() {
    let config = config(Bearer::new("fixed").unwrap());
    let t = Instant::now();
    let mut r = Request::new(&config, 0, RequestSpec::get("http://a.test/x").unwrap().into()).unwrap();
    r.step(Event::Start, t);
    r.step(Event::Turn, t);
    r.step(Event::Authorized(Some(Credentials::bearer("fixed").unwrap())), t);
    assert_eq!(r.step(answer(401), t), Step::Done { cool_down: None });
    assert_eq!(r.finish(t).record.attempts, 1);
}

#[test]
fn no_credentials_end_the_request_unsent_with_the_providers_message() {
    let config = refreshing();
    let t = Instant::now();
    let mut r = Request::new(&config, 0, RequestSpec::get("http://a.test/x").unwrap().into()).unwrap();
    r.step(Event::Start, t);
    r.step(Event::Turn, t);
    let failure = Failure::new(ErrorKind::Auth, "the token endpoint answered 400: invalid_client");
    assert_eq!(r.step(Event::AuthFailed(failure), t), Step::Done { cool_down: None });
    let record = r.finish(t).record;
    assert_eq!(record.attempts, 0);
    assert_eq!(record.error.unwrap().to_string(), "auth: the token endpoint answered 400: invalid_client");
}

#[test]
fn a_redirect_to_another_origin_drops_the_credentials_for_the_rest_of_the_chain() {
    let config = refreshing();
    let t = Instant::now();
    let mut r = Request::new(&config, 0, RequestSpec::get("http://a.test/x").unwrap().into()).unwrap();
    r.step(Event::Start, t);
    r.step(Event::Turn, t);
    r.step(Event::Authorized(Some(token(1))), t);
    let same = Event::Exchanged(
        Ok(Exchanged::Redirect { status: StatusCode::FOUND, location: HeaderValue::from_static("/y") }),
        Wire::default(),
    );
    r.step(same, t);
    assert!(matches!(r.step(Event::Turn, t), Step::Authorize { refresh: false, .. }), "same origin: again");
    r.step(Event::Authorized(Some(token(1))), t);
    // The server echoes the key into the next URL: it is sent there, but no record shows it.
    let away = HeaderValue::from_static("http://b.test/z?key=k&n=1");
    r.step(
        Event::Exchanged(
            Ok(Exchanged::Redirect { status: StatusCode::FOUND, location: away }),
            Wire::default(),
        ),
        t,
    );
    assert!(matches!(r.step(Event::Turn, t), Step::Send { .. }), "another origin: no credentials asked");
    let wire = r.outgoing();
    assert!(wire.headers.get(AUTHORIZATION).is_none());
    let back = HeaderValue::from_static("http://a.test/back");
    r.step(
        Event::Exchanged(
            Ok(Exchanged::Redirect { status: StatusCode::FOUND, location: back }),
            Wire::default(),
        ),
        t,
    );
    assert!(matches!(r.step(Event::Turn, t), Step::Send { .. }), "once dropped, dropped for good");
    r.step(answer(200), t);
    let record = r.finish(t).record;
    assert_eq!(record.url.as_deref(), Some("http://a.test/x"));
    assert_eq!(record.final_url.as_deref(), Some("http://a.test/back"));
}

#[test]
fn a_key_a_server_echoes_into_the_final_url_is_masked_in_the_record() {
    let config = refreshing();
    let t = Instant::now();
    let mut r = Request::new(&config, 0, RequestSpec::get("http://a.test/x").unwrap().into()).unwrap();
    r.step(Event::Start, t);
    r.step(Event::Turn, t);
    r.step(Event::Authorized(Some(token(1))), t);
    let echoed = HeaderValue::from_static("/y?key=k&n=1");
    r.step(
        Event::Exchanged(
            Ok(Exchanged::Redirect { status: StatusCode::FOUND, location: echoed }),
            Wire::default(),
        ),
        t,
    );
    r.step(Event::Turn, t);
    r.step(Event::Authorized(Some(token(1))), t);
    assert_eq!(r.outgoing().url.as_str(), "http://a.test/y?n=1&key=k", "sent once, not twice");
    r.step(answer(200), t);
    let record = r.finish(t).record;
    assert_eq!(record.final_url.as_deref(), Some("http://a.test/y?key=REDACTED&n=1"));
}

/// A provider of the user's own, through the trait alone.
#[derive(Debug)]
struct Counting(std::sync::atomic::AtomicU64);

impl Auth for Counting {
    fn credentials<'a>(&'a self, _: &'a dyn AuthClient) -> AuthFuture<'a, Result<Credentials, AuthError>> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Box::pin(async move { Credentials::new().header("x-n", &n.to_string()) })
    }

    fn describe(&self) -> String {
        "counting".into()
    }
}

#[test]
fn a_providers_own_implementation_is_asked_like_any_other() {
    let config = config(Counting(0.into()));
    let t = Instant::now();
    let mut r =
        Request::new(&config, 0, RequestSpec::new(Method::POST, "http://a.test/x").unwrap().into()).unwrap();
    r.step(Event::Start, t);
    assert!(matches!(r.step(Event::Turn, t), Step::Authorize { refresh: false, .. }));
    assert_eq!(config.auth.as_ref().unwrap().describe(), "counting");
}

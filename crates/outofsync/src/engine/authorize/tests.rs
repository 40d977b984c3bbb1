//! OAuth2 tokens through the engine's driver on tokio's paused clock, against a scripted API and
//! token endpoint: one token for many requests, replaced before it expires; one token request for
//! many requests refused at once; failures of the endpoint handed to every waiting request.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{HeaderMap, StatusCode};
use tokio::time::Instant;

use crate::auth::{OAuth2, RefreshTokenFile};
use crate::engine::config::{Config, RetryPolicy};
use crate::engine::exchange::{Exchange, Exchanged, Hop, Response, Wire};
use crate::engine::failure::Failure;
use crate::engine::run::Engine;
use crate::record::{ErrorKind, Record};
use crate::request::RequestSpec;

/// An API behind bearer tokens and its token endpoint (`http://auth.test/token`). Tokens are
/// checked when a request arrives (expired: 401) and again when its answer is ready (revoked: 401).
struct Api {
    life: u64,
    /// How long the API takes to answer, and the token endpoint.
    takes: Duration,
    token_takes: Duration,
    /// The token endpoint's answer instead of a token.
    token_fails: Mutex<Option<(u16, &'static str)>>,
    tokens: Mutex<HashMap<String, Instant>>,
    revoked: Mutex<HashSet<String>>,
    token_requests: AtomicU64,
    /// The token requests as sent: headers and form.
    token_sent: Mutex<Vec<(HeaderMap, String)>>,
    /// Requests the API got: their host and port, and their Authorization.
    api_sent: Mutex<Vec<(String, Option<String>)>>,
    expired: AtomicU64,
}

impl Api {
    fn new(life: u64) -> Self {
        Self {
            life,
            takes: Duration::from_millis(10),
            token_takes: Duration::from_millis(20),
            token_fails: Mutex::new(None),
            tokens: Mutex::default(),
            revoked: Mutex::default(),
            token_requests: AtomicU64::new(0),
            token_sent: Mutex::default(),
            api_sent: Mutex::default(),
            expired: AtomicU64::new(0),
        }
    }

    fn token(&self, hop: &Hop) -> Response {
        let n = self.token_requests.fetch_add(1, Ordering::Relaxed) + 1;
        let form = String::from_utf8_lossy(hop.body.as_deref().unwrap_or_default()).into_owned();
        self.token_sent.lock().unwrap().push(((*hop.headers).clone(), form));
        if let Some((status, body)) = *self.token_fails.lock().unwrap() {
            return response(status, body);
        }
        let token = format!("t{n}");
        let expires = Instant::now() + Duration::from_secs(self.life);
        self.tokens.lock().unwrap().insert(token.clone(), expires);
        let rotated = format!(r#","refresh_token":"r{n}""#);
        let body = format!(
            r#"{{"access_token":"{token}","token_type":"bearer","expires_in":{}{rotated}}}"#,
            self.life
        );
        response(200, &body)
    }

    fn valid(&self, authorization: Option<&str>, arriving: bool) -> bool {
        let Some(token) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else { return false };
        let Some(expires) = self.tokens.lock().unwrap().get(token).copied() else { return false };
        if arriving && Instant::now() >= expires {
            self.expired.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        !self.revoked.lock().unwrap().contains(token)
    }
}

fn response(status: u16, body: &str) -> Response {
    Response {
        status: StatusCode::from_u16(status).unwrap(),
        headers: HeaderMap::new(),
        body: body.as_bytes().to_vec(),
    }
}

impl Exchange for Api {
    async fn exchange(&self, hop: &Hop, _: &mut Wire) -> Result<Exchanged, Failure> {
        if hop.url.host_str() == Some("auth.test") {
            tokio::time::sleep(self.token_takes).await;
            return Ok(Exchanged::Response(self.token(hop)));
        }
        let authorization = hop.headers.get(AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned());
        let host = hop.url[url::Position::BeforeHost..url::Position::AfterPort].to_owned();
        self.api_sent.lock().unwrap().push((host, authorization.clone()));
        let arrived = self.valid(authorization.as_deref(), true);
        tokio::time::sleep(self.takes).await;
        let ok = arrived && self.valid(authorization.as_deref(), false);
        Ok(Exchanged::Response(if ok { response(200, "{}") } else { response(401, "{}") }))
    }
}

fn oauth2() -> OAuth2 {
    OAuth2::client_credentials("http://auth.test/token".parse().unwrap(), "the id", "the:secret")
}

fn engine(api: Api, auth: OAuth2) -> Arc<Engine<Api>> {
    let config = Config {
        concurrency: 1000,
        retry: RetryPolicy { backoff: Duration::from_millis(100), ..RetryPolicy::default() },
        auth: Some(Arc::new(auth)),
        ..Config::default()
    };
    Arc::new(Engine::new(config, api))
}

fn spawn(engine: &Arc<Engine<Api>>, i: u64, url: &str) -> tokio::task::JoinHandle<Record> {
    let (engine, spec) = (engine.clone(), RequestSpec::get(url).unwrap());
    tokio::spawn(async move { engine.execute(i, spec.into()).await.record })
}

async fn all(handles: Vec<tokio::task::JoinHandle<Record>>) -> Vec<Record> {
    let mut records = Vec::new();
    for handle in handles {
        records.push(handle.await.unwrap());
    }
    records
}

#[tokio::test(start_paused = true)]
async fn one_token_serves_every_request_and_is_replaced_before_it_expires() {
    let engine = engine(Api::new(2), oauth2());
    let mut handles = Vec::new();
    // Ten seconds of requests, five every 50 ms.
    for tick in 0..200u64 {
        for n in 0..5 {
            handles.push(spawn(&engine, tick * 5 + n, "http://api.test/x"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let records = all(handles).await;
    assert!(records.iter().all(|r| r.ok && r.attempts == 1), "{:?}", records.iter().find(|r| !r.ok));
    // A token lives 2 s and is replaced with a fifth of its life left: one every 1.6 s or so.
    let tokens = engine.transport.token_requests.load(Ordering::Relaxed);
    assert!((6..=8).contains(&tokens), "{tokens} token requests in 10 s");
    assert_eq!(
        engine.transport.expired.load(Ordering::Relaxed),
        0,
        "no request went out with an expired token"
    );
    // The client authenticated with Basic, id and secret form-encoded first (RFC 6749 §2.3.1).
    let sent = engine.transport.token_sent.lock().unwrap();
    let (headers, form) = &sent[0];
    assert_eq!(headers[AUTHORIZATION], "Basic dGhlK2lkOnRoZSUzQXNlY3JldA==");
    assert!(headers[AUTHORIZATION].is_sensitive());
    assert_eq!(form, "grant_type=client_credentials");
}

#[tokio::test(start_paused = true)]
async fn five_hundred_requests_refused_together_cause_one_token_request() {
    let mut api = Api::new(3600);
    api.takes = Duration::from_millis(100);
    let engine = engine(api, oauth2());
    let handles: Vec<_> = (0..500).map(|i| spawn(&engine, i, "http://api.test/slow")).collect();
    // Every request is on the wire with the first token when the server revokes it.
    tokio::time::sleep(Duration::from_millis(70)).await;
    assert_eq!(engine.transport.api_sent.lock().unwrap().len(), 500);
    engine.transport.revoked.lock().unwrap().insert("t1".into());
    let records = all(handles).await;
    assert_eq!(engine.transport.token_requests.load(Ordering::Relaxed), 2, "the first token, and one more");
    for record in &records {
        assert!(record.ok, "{record:?}");
        assert_eq!((record.attempts, record.history.len(), record.history[0].status), (2, 1, Some(401)));
    }
    let sent = engine.transport.api_sent.lock().unwrap();
    assert_eq!(
        sent.iter().filter(|(_, a)| a.as_deref() == Some("Bearer t2")).count(),
        500,
        "each sent again once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_token_endpoint_that_refuses_the_client_fails_every_request_unsent_and_is_asked_once() {
    let api = Api::new(60);
    *api.token_fails.lock().unwrap() =
        Some((400, r#"{"error":"invalid_client","error_description":"client authentication failed"}"#));
    let engine = engine(api, oauth2());
    let first: Vec<_> = (0..50).map(|i| spawn(&engine, i, "http://api.test/x")).collect();
    let mut records = all(first).await;
    // Later requests get the same answer without asking again: a refused client stays refused.
    tokio::time::sleep(Duration::from_secs(30)).await;
    records.extend(all((50..60).map(|i| spawn(&engine, i, "http://api.test/x")).collect()).await);
    for record in &records {
        let error = record.error.as_ref().unwrap();
        assert_eq!((error.kind, record.attempts), (ErrorKind::Auth, 0));
        assert_eq!(
            error.message,
            "the token endpoint http://auth.test/token answered 400 Bad Request: invalid_client (client authentication failed)"
        );
    }
    assert_eq!(engine.transport.token_requests.load(Ordering::Relaxed), 1);
    assert!(engine.transport.api_sent.lock().unwrap().is_empty(), "nothing went out without a token");
}

#[tokio::test(start_paused = true)]
async fn a_token_endpoint_that_is_down_is_retried_then_fails_the_waiting_requests_for_a_second() {
    let api = Api::new(60);
    *api.token_fails.lock().unwrap() = Some((503, "down"));
    let engine = engine(api, oauth2());
    let records = all((0..20).map(|i| spawn(&engine, i, "http://api.test/x")).collect()).await;
    for record in &records {
        let error = record.error.as_ref().unwrap();
        assert_eq!(error.kind, ErrorKind::Auth);
        assert!(error.message.ends_with("answered 503 Service Unavailable: down"), "{}", error.message);
    }
    assert_eq!(engine.transport.token_requests.load(Ordering::Relaxed), 3, "the first and two retries");
    // Once the second has passed, and the endpoint is back, tokens come again.
    *engine.transport.token_fails.lock().unwrap() = None;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(spawn(&engine, 20, "http://api.test/x").await.unwrap().ok);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_the_token_until_it_expires() {
    let engine = engine(Api::new(10), oauth2());
    assert!(spawn(&engine, 0, "http://api.test/x").await.unwrap().ok);
    *engine.transport.token_fails.lock().unwrap() = Some((500, "oops"));
    // 8.5 s in, the token is due for replacement; the refresh fails; the token still works.
    tokio::time::sleep(Duration::from_millis(8500)).await;
    let record = spawn(&engine, 1, "http://api.test/x").await.unwrap();
    assert!(record.ok, "{record:?}");
    assert!(engine.transport.token_requests.load(Ordering::Relaxed) > 1, "a refresh was tried");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let record = spawn(&engine, 2, "http://api.test/x").await.unwrap();
    assert_eq!(record.error.unwrap().kind, ErrorKind::Auth, "expired, and no new one");
}

#[tokio::test(start_paused = true)]
async fn a_slow_token_endpoint_ends_a_request_at_its_deadline() {
    let mut api = Api::new(60);
    api.token_takes = Duration::from_secs(20);
    let config =
        Config { deadline: Duration::from_secs(2), auth: Some(Arc::new(oauth2())), ..Config::default() };
    let engine = Arc::new(Engine::new(config, api));
    let started = Instant::now();
    let record = engine.execute(0, RequestSpec::get("http://api.test/x").unwrap().into()).await.record;
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    let error = record.error.unwrap();
    assert_eq!((error.kind, record.attempts), (ErrorKind::Timeout, 0));
    assert!(error.message.contains("while it waited for credentials"), "{}", error.message);
}

#[tokio::test(start_paused = true)]
async fn credentials_go_to_the_first_requests_host_and_no_other() {
    let engine = engine(Api::new(60), oauth2());
    let auth = engine.auth.as_ref().unwrap();
    let inputs = ["http://api.test/a", "http://other.test/b", "http://api.test:8080/c", "http://api.test/d"];
    for url in inputs {
        auth.learn(&RequestSpec::get(url).unwrap().into());
    }
    let records =
        all(inputs.iter().enumerate().map(|(i, url)| spawn(&engine, i as u64, url)).collect()).await;
    let sent = engine.transport.api_sent.lock().unwrap().clone();
    let carried = |authority: &str| sent.iter().filter(|(h, a)| h == authority && a.is_some()).count();
    assert_eq!((carried("api.test"), carried("other.test"), carried("api.test:8080")), (2, 0, 0));
    assert!(records[0].ok && records[3].ok && !records[1].ok && !records[2].ok);
}

#[tokio::test(start_paused = true)]
async fn a_rotated_refresh_token_is_saved_before_its_access_token_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("refresh-token");
    std::fs::write(&path, "r0\n").unwrap();
    let auth = OAuth2::refresh_token(
        "http://auth.test/token".parse().unwrap(),
        RefreshTokenFile::open(&path).unwrap(),
    )
    .client("public-client", None);
    let engine = engine(Api::new(2), auth);
    for i in 0..3 {
        assert!(spawn(&engine, i, "http://api.test/x").await.unwrap().ok);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("r{}\n", i + 1));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let sent = engine.transport.token_sent.lock().unwrap();
    let forms: Vec<&str> = sent.iter().map(|(_, form)| form.as_str()).collect();
    assert_eq!(
        forms,
        [
            "grant_type=refresh_token&refresh_token=r0&client_id=public-client",
            "grant_type=refresh_token&refresh_token=r1&client_id=public-client",
            "grant_type=refresh_token&refresh_token=r2&client_id=public-client",
        ]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

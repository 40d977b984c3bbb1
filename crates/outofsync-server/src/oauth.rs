//! OAuth2 for the tests: `POST /oauth/token` (RFC 6749: client credentials, and refresh tokens
//! rotated on every use), `POST /oauth/introspect` (RFC 7662), `POST /oauth/refresh-token` (a new
//! grant, as if a user had just consented), `GET|POST /oauth/control` (token lifetime, failures,
//! slowness, revocation), and `ANY /protected/…`: every other endpoint behind a bearer token.
//!
//! # Rotation that a careful client survives
//!
//! Each refresh answers a new refresh token. The one presented stays valid until the new one, or
//! an access token that came with it, is first used: a client killed after the server rotated but
//! before it saved the new token can still present the old one (which drops the unused new one).
//! Any other token is refused with `invalid_grant`.
//!
//! # Checks of a protected request
//!
//! The token is checked when the request arrives (missing, unknown, expired or revoked: `401`
//! with `WWW-Authenticate: Bearer`), and checked again for revocation when the answer is ready,
//! so that a revocation reaches the requests in flight too. Every outcome is counted in `/stats`
//! under `oauth`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::reply::{self, Answer, Query, Refusal, Reply};

/// The client the token endpoint knows.
pub const CLIENT_ID: &str = "outofsync-demo";
/// Its secret.
pub const CLIENT_SECRET: &str = "demo-secret-9f2c41d7";
/// The largest form the token endpoint reads.
const MAX_FORM: usize = 64 << 10;
/// Tokens (access or refresh) kept before the oldest are forgotten (then refused as unknown).
pub const MAX_TOKENS: usize = 100_000;
/// Access tokens listed by `GET /oauth/control`.
const RECENT: usize = 16;

/// What the control sets.
#[derive(Clone, Debug)]
struct Settings {
    expires_in: u64,
    fail: Fail,
    delay: Duration,
    rotate: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fail {
    None,
    InvalidClient,
    Unavailable,
}

impl Fail {
    fn name(self) -> &'static str {
        match self {
            Fail::None => "none",
            Fail::InvalidClient => "invalid_client",
            Fail::Unavailable => "unavailable",
        }
    }
}

/// An access token issued.
struct Access {
    serial: u64,
    expires: Instant,
    /// The grant it came from and the rotation of that grant, for a refresh.
    family: Option<(u64, u64)>,
}

/// One grant's chain of refresh tokens.
struct Family {
    current: String,
    /// How many times it rotated.
    rotation: u64,
    /// The token presented for the current one, still valid until the current one is used.
    previous: Option<String>,
}

/// The state behind the OAuth2 endpoints.
pub struct OAuth {
    inner: Mutex<Inner>,
    counts: Counts,
}

struct Inner {
    settings: Settings,
    access: HashMap<String, Access>,
    /// Refresh token → its family.
    refresh: HashMap<String, u64>,
    families: HashMap<u64, Family>,
    serial: u64,
    /// Access tokens with a serial below this are revoked.
    revoked_below: u64,
    recent: VecDeque<String>,
    rng: fastrand::Rng,
}

#[derive(Default)]
struct Counts {
    token_requests: AtomicU64,
    token_in_flight: AtomicU64,
    tokens_issued: AtomicU64,
    refreshes: AtomicU64,
    token_refusals: AtomicU64,
    authorized: AtomicU64,
    missing: AtomicU64,
    unknown: AtomicU64,
    expired: AtomicU64,
    revoked: AtomicU64,
}

impl OAuth {
    /// Fresh state: tokens for an hour, no failure, no delay, refresh tokens rotated.
    pub fn new(seed: u64) -> Self {
        Self {
            inner: Mutex::new(Inner {
                settings: Settings {
                    expires_in: 3600,
                    fail: Fail::None,
                    delay: Duration::ZERO,
                    rotate: true,
                },
                access: HashMap::new(),
                refresh: HashMap::new(),
                families: HashMap::new(),
                serial: 0,
                revoked_below: 0,
                recent: VecDeque::new(),
                rng: fastrand::Rng::with_seed(seed ^ 0x0a07_4200),
            }),
            counts: Counts::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `oauth` object of `/stats`.
    pub fn to_json(&self) -> Value {
        let c = &self.counts;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "token_requests": n(&c.token_requests),
            "token_in_flight": n(&c.token_in_flight),
            "tokens_issued": n(&c.tokens_issued),
            "refreshes": n(&c.refreshes),
            "token_refusals": n(&c.token_refusals),
            "authorized": n(&c.authorized),
            "missing_token": n(&c.missing),
            "unknown_token": n(&c.unknown),
            "expired_token": n(&c.expired),
            "revoked_token": n(&c.revoked),
        })
    }

    /// Counts start again from zero (what is in flight stays counted).
    pub fn reset(&self) {
        let c = &self.counts;
        for counter in [
            &c.token_requests,
            &c.tokens_issued,
            &c.refreshes,
            &c.token_refusals,
            &c.authorized,
            &c.missing,
            &c.unknown,
            &c.expired,
            &c.revoked,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

impl Inner {
    fn token(&mut self, prefix: &str) -> String {
        self.serial += 1;
        format!("{prefix}-{}-{:016x}", self.serial, self.rng.u64(..))
    }

    /// A new access token, and the rotation of the grant it came from.
    fn mint_access(&mut self, family: Option<(u64, u64)>) -> (String, u64) {
        if self.access.len() >= MAX_TOKENS {
            let now = Instant::now();
            self.access.retain(|_, a| a.expires > now);
            if self.access.len() >= MAX_TOKENS {
                self.access.clear();
            }
        }
        let token = self.token("at");
        let expires_in = self.settings.expires_in;
        let access =
            Access { serial: self.serial, expires: Instant::now() + Duration::from_secs(expires_in), family };
        self.access.insert(token.clone(), access);
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(token.clone());
        (token, expires_in)
    }

    /// A new grant: its first refresh token.
    fn grant(&mut self) -> String {
        if self.refresh.len() >= MAX_TOKENS {
            self.refresh.clear();
            self.families.clear();
        }
        let token = self.token("rt");
        let id = self.serial;
        self.families.insert(id, Family { current: token.clone(), rotation: 0, previous: None });
        self.refresh.insert(token.clone(), id);
        token
    }

    /// The family of `presented` and its rotation after the refresh, with the new refresh token
    /// when it rotates; `None` when `presented` is not valid.
    fn refresh(&mut self, presented: &str) -> Option<(u64, u64, Option<String>)> {
        let id = *self.refresh.get(presented)?;
        let rotate = self.settings.rotate;
        let new = rotate.then(|| self.token("rt"));
        let family = self.families.get_mut(&id)?;
        let mut dropped = Vec::new();
        if family.current == presented {
            if let Some(new) = &new {
                // The current token is used: the one before it is done with.
                dropped.extend(family.previous.replace(family.current.clone()));
                family.current = new.clone();
                family.rotation += 1;
            }
        } else if family.previous.as_deref() == Some(presented) {
            // The client never used the newer token (it lost it): that one is dropped instead.
            if let Some(new) = &new {
                dropped.push(std::mem::replace(&mut family.current, new.clone()));
                family.rotation += 1;
            }
        } else {
            return None;
        }
        let rotation = family.rotation;
        for token in dropped {
            self.refresh.remove(&token);
        }
        if let Some(new) = &new {
            self.refresh.insert(new.clone(), id);
        }
        Some((id, rotation, new))
    }

    /// An access token of rotation `rotation` of grant `id` was used: the refresh token before
    /// the current one is done with.
    fn used(&mut self, (id, rotation): (u64, u64)) {
        if let Some(family) = self.families.get_mut(&id)
            && family.rotation == rotation
            && let Some(previous) = family.previous.take()
        {
            self.refresh.remove(&previous);
        }
    }
}

/// Why a bearer token is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refused {
    Missing,
    Unknown,
    Expired,
    Revoked,
}

impl OAuth {
    /// Checks the bearer token of `parts`; `arriving` also checks expiry and notes the use.
    fn check(&self, parts: &Parts, arriving: bool) -> Result<(), Refused> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or(Refused::Missing)?;
        let mut inner = self.lock();
        let access = inner.access.get(token).ok_or(Refused::Unknown)?;
        if access.serial < inner.revoked_below {
            return Err(Refused::Revoked);
        }
        if arriving {
            if access.expires <= Instant::now() {
                return Err(Refused::Expired);
            }
            if let Some(family) = access.family {
                inner.used(family);
            }
        }
        Ok(())
    }

    fn refusal(&self, why: Refused) -> Reply {
        let c = &self.counts;
        let (counter, detail) = match why {
            Refused::Missing => (&c.missing, None),
            Refused::Unknown => (&c.unknown, Some("the access token is not known")),
            Refused::Expired => (&c.expired, Some("the access token expired")),
            Refused::Revoked => (&c.revoked, Some("the access token was revoked")),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let (challenge, body) = match detail {
            None => {
                ("Bearer realm=\"outofsync\"".to_owned(), json!({ "error": "a bearer token is required" }))
            }
            Some(detail) => (
                format!(
                    "Bearer realm=\"outofsync\", error=\"invalid_token\", error_description=\"{detail}\""
                ),
                json!({ "error": "invalid_token", "error_description": detail }),
            ),
        };
        let mut reply = reply::json(StatusCode::UNAUTHORIZED, &body);
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            reply.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        reply
    }

    /// The `401` of a protected request without a valid token; `None` lets it through (counted).
    pub fn refuse(&self, parts: &Parts) -> Option<Reply> {
        match self.check(parts, true) {
            Ok(()) => {
                self.counts.authorized.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(why) => Some(self.refusal(why)),
        }
    }

    /// The answer to a protected request, unless its token was revoked while it ran.
    pub fn release(&self, parts: &Parts, answer: Answer) -> Answer {
        match self.check(parts, false) {
            Err(Refused::Revoked) => Ok(self.refusal(Refused::Revoked)),
            _ => answer,
        }
    }
}

/// Counts a token request in flight until dropped.
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `/oauth/{name}`.
pub async fn endpoint(oauth: &OAuth, name: &str, parts: &Parts, body: Incoming) -> Answer {
    match (name, &parts.method) {
        ("token", &Method::POST) => token(oauth, parts, body).await,
        ("introspect", &Method::POST) => introspect(oauth, body).await,
        ("refresh-token", &Method::POST) => {
            Ok(reply::json(StatusCode::OK, &json!({ "refresh_token": oauth.lock().grant() })))
        }
        ("control", &Method::GET | &Method::POST) => control(oauth, &Query::parse(parts.uri.query())),
        ("token" | "introspect" | "refresh-token", _) => {
            Err(Refusal::method_not_allowed(parts.uri.path(), "POST"))
        }
        ("control", _) => Err(Refusal::method_not_allowed(parts.uri.path(), "GET, POST")),
        _ => Err(reply::error(StatusCode::NOT_FOUND, format!("no endpoint at {}", parts.uri.path()))),
    }
}

async fn form(body: Incoming) -> Result<HashMap<String, String>, Refusal> {
    let bytes: Bytes = match Limited::new(body, MAX_FORM).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(reply::bad_request(format!("the form must be at most {MAX_FORM} bytes"))),
    };
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

/// An RFC 6749 §5.2 error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Reply {
    reply::json(status, &json!({ "error": error, "error_description": description }))
}

/// `POST /oauth/token`.
async fn token(oauth: &OAuth, parts: &Parts, body: Incoming) -> Answer {
    let counts = &oauth.counts;
    counts.token_requests.fetch_add(1, Ordering::Relaxed);
    counts.token_in_flight.fetch_add(1, Ordering::Relaxed);
    let _in_flight = InFlight(&counts.token_in_flight);
    let form = form(body).await?;
    let settings = oauth.lock().settings.clone();
    let answer = issue(oauth, parts, &form, &settings);
    // The delay comes after the tokens are issued: a client killed meanwhile has lost the answer
    // of a refresh the server has already rotated.
    tokio::time::sleep(settings.delay).await;
    if answer.status() != StatusCode::OK {
        counts.token_refusals.fetch_add(1, Ordering::Relaxed);
    }
    Ok(answer)
}

fn issue(oauth: &OAuth, parts: &Parts, form: &HashMap<String, String>, settings: &Settings) -> Reply {
    match settings.fail {
        Fail::None => {}
        Fail::InvalidClient => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "client authentication failed");
        }
        Fail::Unavailable => {
            return oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the token endpoint is down (/oauth/control?fail=unavailable)",
            );
        }
    }
    let grant = form.get("grant_type").map(String::as_str).unwrap_or_default();
    let basic =
        parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "));
    let client = match basic {
        Some(encoded) => Some(basic_client(encoded)),
        None => form.get("client_id").map(|id| (id.clone(), form.get("client_secret").cloned())),
    };
    let client_ok = match &client {
        Some((id, secret)) => id == CLIENT_ID && secret.as_deref() == Some(CLIENT_SECRET),
        // A public client may refresh without authenticating; client credentials need a client.
        None => grant == "refresh_token",
    };
    if !client_ok {
        let mut reply = oauth_error(
            if basic.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST },
            "invalid_client",
            "client authentication failed",
        );
        if basic.is_some() {
            reply
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"outofsync\""));
        }
        return reply;
    }
    let mut inner = oauth.lock();
    let (access, expires_in, refresh) = match grant {
        "client_credentials" => {
            let (access, expires_in) = inner.mint_access(None);
            (access, expires_in, None)
        }
        "refresh_token" => {
            let presented = form.get("refresh_token").map(String::as_str).unwrap_or_default();
            let Some((family, rotation, refresh)) = inner.refresh(presented) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the refresh token is not valid: unknown, or replaced by a newer one that was used",
                );
            };
            oauth.counts.refreshes.fetch_add(1, Ordering::Relaxed);
            let (access, expires_in) = inner.mint_access(Some((family, rotation)));
            (access, expires_in, refresh)
        }
        "" => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "grant_type is missing"),
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "this server knows client_credentials and refresh_token",
            );
        }
    };
    drop(inner);
    oauth.counts.tokens_issued.fetch_add(1, Ordering::Relaxed);
    let mut doc = json!({ "access_token": access, "token_type": "Bearer", "expires_in": expires_in });
    if let Some(refresh) = refresh {
        doc["refresh_token"] = json!(refresh);
    }
    if let Some(scope) = form.get("scope") {
        doc["scope"] = json!(scope);
    }
    let mut reply = reply::json(StatusCode::OK, &doc);
    reply.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    reply
}

/// The client id and secret of a Basic header, form-decoded (RFC 6749 §2.3.1).
fn basic_client(encoded: &str) -> (String, Option<String>) {
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).unwrap_or_default();
    let text = String::from_utf8_lossy(&decoded);
    let decode =
        |s: &str| form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    match text.split_once(':') {
        Some((id, secret)) => (decode(id).unwrap_or_default(), decode(secret)),
        None => (text.into_owned(), None),
    }
}

/// `POST /oauth/introspect` (`token=…`): whether it is an access or refresh token valid now.
async fn introspect(oauth: &OAuth, body: Incoming) -> Answer {
    let form = form(body).await?;
    let token = form.get("token").map(String::as_str).unwrap_or_default();
    let inner = oauth.lock();
    let doc = if let Some(access) = inner.access.get(token) {
        let active = access.serial >= inner.revoked_below && access.expires > Instant::now();
        json!({ "active": active, "token_type": "access_token" })
    } else if inner.refresh.contains_key(token) {
        json!({ "active": true, "token_type": "refresh_token" })
    } else {
        json!({ "active": false })
    };
    Ok(reply::json(StatusCode::OK, &doc))
}

/// `/oauth/control?expires_in=S&fail=none|invalid_client|unavailable&delay_ms=N&rotate=BOOL&revoke=access`:
/// changes what is given, then shows the settings and the access tokens issued last.
fn control(oauth: &OAuth, query: &Query) -> Answer {
    let mut inner = oauth.lock();
    if let Some(s) = query.get::<u64>("expires_in")? {
        inner.settings.expires_in = s;
    }
    if let Some(ms) = query.get::<u64>("delay_ms")? {
        inner.settings.delay = Duration::from_millis(reply::capped("delay_ms", ms, 600_000)?);
    }
    if let Some(rotate) = query.get::<bool>("rotate")? {
        inner.settings.rotate = rotate;
    }
    if let Some(fail) = query.str("fail") {
        inner.settings.fail = match fail {
            "none" => Fail::None,
            "invalid_client" => Fail::InvalidClient,
            "unavailable" => Fail::Unavailable,
            other => {
                return Err(reply::bad_request(format!(
                    "fail={other:?}: use none, invalid_client or unavailable"
                )));
            }
        };
    }
    match query.str("revoke") {
        None => {}
        Some("access") => inner.revoked_below = inner.serial + 1,
        Some(other) => return Err(reply::bad_request(format!("revoke={other:?}: use access"))),
    }
    let settings = &inner.settings;
    Ok(reply::json(
        StatusCode::OK,
        &json!({
            "expires_in": settings.expires_in,
            "fail": settings.fail.name(),
            "delay_ms": settings.delay.as_millis() as u64,
            "rotate": settings.rotate,
            "recent_access_tokens": inner.recent,
        }),
    ))
}

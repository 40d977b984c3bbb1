//! Dispatches a request to its endpoint and ties it into `/stats`.

use std::convert::Infallible;
use std::sync::Arc;

use http::header::HOST;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use super::encoding::{self, Coding, Compressed};
use super::json::{self, Documents};
use super::oauth::OAuth;
use super::reply::{self, Answer, Query, Refusal, Reply};
use super::stats::ServerStats;
use super::status::{self, Failures};
use super::{echo, oauth, random, redirect, timing};

/// What the endpoints share for the life of a server.
pub(crate) struct State {
    pub seed: u64,
    pub stats: Arc<ServerStats>,
    pub docs: Documents,
    pub failures: Failures,
    pub compressed: Compressed,
    pub oauth: OAuth,
}

impl State {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            stats: Arc::new(ServerStats::new()),
            docs: Documents::default(),
            failures: Failures::new(seed),
            compressed: Compressed::new(),
            oauth: OAuth::new(seed),
        }
    }
}

/// The service function: every request gets a reply; a refused one gets a 4xx with a JSON body.
pub(crate) async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    // `/stats` does not count itself, so reading it never disturbs what it reports.
    if path == "/stats" || path == "/stats/reset" {
        return Ok(stats(&state, &parts.method, path));
    }
    // HTTP/1 names the host in `Host`, HTTP/2 in the `:authority` that hyper puts in the URI.
    let host = parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let guard = state.stats.enter(path, host);
    let reply = route(&state, &parts, body, host).await.unwrap_or_else(Refusal::into_reply);
    let (head, body) = reply.into_parts();
    Ok(Response::from_parts(head, body.with_guard(Some(guard))))
}

async fn route(state: &State, parts: &http::request::Parts, body: Incoming, host: &str) -> Answer {
    let path = parts.uri.path();
    let query = Query::parse(parts.uri.query());
    let mut segments = path.strip_prefix('/').unwrap_or(path).splitn(2, '/');
    let (first, rest) = (segments.next().unwrap_or(""), segments.next());

    if first == "anything" {
        return echo::anything(parts, body).await;
    }
    if let ("oauth", Some(name)) = (first, rest) {
        return oauth::endpoint(&state.oauth, name, parts, body).await;
    }
    if first == "protected" {
        return protected(state, parts, body, host, rest.unwrap_or("")).await;
    }
    // Any method may be slow (as httpbin's): a POST in flight is what `--at-most-once` is about.
    if let ("delay", Some(ms)) = (first, rest) {
        return timing::delay(ms).await;
    }
    let known = matches!(
        (first, rest),
        ("json" | "items" | "flaky" | "ratelimit" | "redirect-to" | "drip" | "endless" | "bomb", None)
            | ("gzip" | "deflate" | "brotli" | "zstd", None)
            | ("delay" | "status" | "flaky" | "redirect" | "bytes", Some(_))
    );
    if !known {
        return Err(reply::error(StatusCode::NOT_FOUND, format!("no endpoint at {path}")));
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return Err(Refusal::method_not_allowed(path, "GET, HEAD"));
    }
    match (first, rest) {
        ("json", None) => json::document(&state.docs, &query),
        ("items", None) => json::items(&query, host),
        ("drip", None) => timing::drip(&query),
        ("endless", None) => timing::endless(),
        ("status", Some(code)) => status::status(code),
        ("flaky", Some(k)) => status::flaky_key(&state.failures, k, &query),
        ("flaky", None) => status::flaky_random(&state.failures, &query),
        ("ratelimit", None) => status::ratelimit(&state.failures, &query),
        ("redirect", Some(n)) => redirect::chain(n),
        ("redirect-to", None) => redirect::to(&query),
        ("bytes", Some(n)) => random::bytes(state.seed, n),
        ("bomb", None) => encoding::bomb(&query),
        (name, None) => {
            let coding = Coding::parse(name).expect("matched a coding name above");
            encoding::document(&state.compressed, coding)
        }
        _ => unreachable!("every known route is matched"),
    }
}

/// `ANY /protected/{endpoint}`: the endpoint, for a request with a valid bearer token.
async fn protected(
    state: &State,
    parts: &http::request::Parts,
    body: Incoming,
    host: &str,
    inner: &str,
) -> Answer {
    if let Some(refusal) = state.oauth.refuse(parts) {
        return Ok(refusal);
    }
    let mut unwrapped = parts.clone();
    let path = match parts.uri.query() {
        Some(query) => format!("/{inner}?{query}"),
        None => format!("/{inner}"),
    };
    let mut uri = parts.uri.clone().into_parts();
    uri.path_and_query = Some(path.parse().map_err(|_| reply::bad_request("a bad path"))?);
    unwrapped.uri = http::Uri::from_parts(uri).map_err(|_| reply::bad_request("a bad path"))?;
    let answer = Box::pin(route(state, &unwrapped, body, host)).await;
    state.oauth.release(parts, answer)
}

fn stats(state: &State, method: &Method, path: &str) -> Reply {
    let document = |state: &State| {
        let mut doc = state.stats.to_json();
        doc["oauth"] = state.oauth.to_json();
        doc
    };
    match (path, method) {
        ("/stats", &Method::GET | &Method::HEAD) => reply::json(StatusCode::OK, &document(state)),
        ("/stats/reset", &Method::POST) => {
            state.stats.reset();
            state.oauth.reset();
            reply::json(StatusCode::OK, &document(state))
        }
        _ => {
            let allowed = if path == "/stats" { "GET, HEAD" } else { "POST" };
            Refusal::method_not_allowed(path, allowed).into_reply()
        }
    }
}

//! Redirecting endpoints: `GET /redirect/{n}` (a chain ending on `/json`) and `GET /redirect-to` (anywhere).

use http::StatusCode;
use http::header::{HeaderValue, LOCATION};
use serde_json::json;

use super::reply::{self, Answer, Query, Reply};

/// The longest chain `/redirect/{n}` builds.
pub const MAX_CHAIN: u32 = 1000;

fn redirect(status: StatusCode, location: &str) -> Answer {
    let value = HeaderValue::from_str(location)
        .map_err(|_| reply::bad_request(format!("location is not a valid header value: {location:?}")))?;
    let mut reply: Reply = reply::json(status, &json!({ "location": location }));
    reply.headers_mut().insert(LOCATION, value);
    Ok(reply)
}

/// `GET /redirect/{n}`: a 302 to `/redirect/{n-1}`, and from `/redirect/1` to `/json`.
pub fn chain(n: &str) -> Answer {
    let n = reply::capped("n", reply::segment::<u32>("n", n)?, MAX_CHAIN)?;
    match n {
        0 => Err(reply::bad_request("n counts from 1")),
        1 => redirect(StatusCode::FOUND, "/json"),
        n => redirect(StatusCode::FOUND, &format!("/redirect/{}", n - 1)),
    }
}

/// `GET /redirect-to?url=U&status=S`: a redirect (status `S`, default 302) to any location `U`.
pub fn to(query: &Query) -> Answer {
    let url = query.str("url").ok_or_else(|| reply::bad_request("url is required"))?;
    let status = query.get::<u16>("status")?.unwrap_or(302);
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| s.is_redirection())
        .ok_or_else(|| reply::bad_request(format!("status must be a 3xx code, got {status}")))?;
    redirect(status, url)
}

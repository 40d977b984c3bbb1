//! A list and its details, for two-level pulls: `GET /users?page=N&per_page=M&total=T` (ids, a
//! page at a time) and `GET /users/{id}` (one user).

use http::StatusCode;
use serde_json::json;

use super::reply::{self, Answer, Query};

/// The largest page.
const MAX_PER_PAGE: u64 = 1000;
/// The most users a list may have.
const MAX_TOTAL: u64 = 1 << 32;

/// `GET /users?page=N&per_page=M&total=T`: users `(N-1)·M+1` to `N·M` of `T` (default 100), as
/// `{"users":[{"id":…,"name":…}],"page":N,"next":URL or null}`; pages count from 1.
pub fn list(query: &Query, host: &str) -> Answer {
    let page = query.get::<u64>("page")?.unwrap_or(1);
    if page == 0 {
        return Err(reply::bad_request("page counts from 1"));
    }
    let per_page =
        reply::capped("per_page", query.get::<u64>("per_page")?.unwrap_or(10).max(1), MAX_PER_PAGE)?;
    let total = reply::capped("total", query.get::<u64>("total")?.unwrap_or(100), MAX_TOTAL)?;
    let first = (page - 1).saturating_mul(per_page).min(total);
    let last = page.saturating_mul(per_page).min(total);
    let users: Vec<_> =
        (first + 1..=last).map(|id| json!({ "id": id, "name": format!("user-{id}") })).collect();
    let next = (last < total)
        .then(|| format!("http://{host}/users?page={}&per_page={per_page}&total={total}", page + 1));
    Ok(reply::json(StatusCode::OK, &json!({ "users": users, "page": page, "next": next })))
}

/// `GET /users/{id}`: `{"id":…,"name":…,"email":…,"team":…}` for any id from 1.
pub fn one(id: &str) -> Answer {
    let id = reply::segment::<u64>("id", id)?;
    if id == 0 {
        return Err(reply::error(StatusCode::NOT_FOUND, "user ids count from 1"));
    }
    let team = ["blue", "green", "red"][(id % 3) as usize];
    Ok(reply::json(
        StatusCode::OK,
        &json!({ "id": id, "name": format!("user-{id}"), "email": format!("user-{id}@example.invalid"), "team": team }),
    ))
}

//! The note's `fetch_data()`, in Rust:
//!
//! ```python
//! async def fetch_data():
//!     async with aiohttp.ClientSession() as session:
//!         async with session.get('https://api.example.com/data') as response:
//!             return await response.json()
//! ```
//!
//! Run it with a URL (`cargo run --example fetch_data -- http://127.0.0.1:8080/json`), or without
//! one to fetch from a built-in server it starts for the occasion.

use std::io::Write;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    run(std::env::args().nth(1), &mut std::io::stdout(), &mut std::io::stderr()).await
}

/// Fetches `url` (or `/json` of a server started here), prints the data to `out`, and a failure
/// to `err` as a sentence. Not `main() -> Result<…>`: that prints an error with `Debug`
/// (`RecordError { kind: Connect, message: "…" }`), which is for programmers, not for readers.
async fn run(url: Option<String>, out: &mut impl Write, err: &mut impl Write) -> ExitCode {
    let server; // lives until the end of the fetch, if we start one
    let url = match url {
        Some(url) => url,
        None => match outofsync_server::Server::start() {
            Ok(started) => {
                server = started;
                server.url("/json")
            }
            Err(e) => {
                _ = writeln!(err, "fetch_data: cannot start the built-in server: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    match outofsync::get_json::<serde_json::Value>(&url).await {
        Ok(data) => {
            _ = writeln!(out, "{data}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            _ = writeln!(err, "fetch_data: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failure_is_printed_as_a_sentence_not_as_debug_output() {
        // Port 1 on loopback: nothing listens there, so the connection is refused.
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(Some("http://127.0.0.1:1/json".into()), &mut out, &mut err).await;
        assert_eq!(code, ExitCode::FAILURE);
        let err = String::from_utf8(err).unwrap();
        assert!(err.starts_with("fetch_data: connect: "), "{err}");
        assert!(!err.contains("RecordError") && !err.contains("kind:"), "{err}");
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn without_a_url_it_fetches_from_a_server_of_its_own() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(run(None, &mut out, &mut err).await, ExitCode::SUCCESS);
        let data: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(data["id"].is_u64(), "{data}");
    }
}

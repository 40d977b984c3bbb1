//! The library API: `Fetcher`, `fetch_all`, `get_json`, typed errors.

use futures_util::StreamExt;
use outofsync::{ErrorKind, Fetcher, Input, InvalidInput, RecordError, RequestSpec};

use crate::support::server;

#[tokio::test]
async fn fetch_all_yields_one_record_per_input_in_any_order() {
    let s = server();
    let fetcher = Fetcher::builder().concurrency(16).retries(0).build().unwrap();
    let inputs = futures_util::stream::iter((0..500u64).map(move |n| -> Input {
        if n == 250 {
            InvalidInput::new("made up").into()
        } else {
            RequestSpec::get(&format!("http://127.0.0.1:1/json?id={n}")).unwrap().into()
        }
    }));
    // Nothing listens on port 1: every request fails to connect, and still ends as a record.
    let records: Vec<_> = fetcher.fetch_all(inputs).collect().await;
    assert_eq!(records.len(), 500);
    let mut seen: Vec<u64> = records.iter().map(|r| r.i).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..500).collect::<Vec<_>>());
    assert!(records.iter().filter(|r| r.i != 250).all(|r| r.error_kind() == Some(ErrorKind::Connect)));
    assert_eq!(records.iter().find(|r| r.i == 250).unwrap().error_kind(), Some(ErrorKind::InvalidRequest));

    let urls: Vec<_> =
        (0..300).map(|n| RequestSpec::get(&s.url(&format!("/json?id={n}"))).unwrap()).collect();
    let records: Vec<_> = fetcher.fetch_all(futures_util::stream::iter(urls)).collect().await;
    assert_eq!(records.len(), 300);
    for r in &records {
        #[derive(serde::Deserialize)]
        struct Doc {
            id: u64,
        }
        assert_eq!(r.json::<Doc>().unwrap().id, r.i);
    }
}

#[tokio::test]
async fn get_json_is_the_notes_fetch_data() {
    let s = server();
    let doc: serde_json::Value = outofsync::get_json(&s.url("/json?id=3")).await.unwrap();
    assert_eq!(doc["id"], 3);
    let err = outofsync::get_json::<serde_json::Value>(&s.url("/bytes/10")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Decode);
    let err = outofsync::get_json::<serde_json::Value>(&s.url("/status/418")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::HttpStatus);
    assert!(err.message.contains("418"));
    let err = outofsync::get_json::<serde_json::Value>("not a url").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidRequest);
}

#[test]
fn errors_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + std::error::Error + 'static>() {}
    assert_send_sync::<RecordError>();
    assert_send_sync::<InvalidInput>();
    assert_send_sync::<outofsync::BuildError>();
}

#[tokio::test]
async fn fetch_returns_a_record_for_a_single_request() {
    let s = server();
    let fetcher = Fetcher::builder().build().unwrap();
    let record =
        fetcher.fetch(RequestSpec::get(&s.url("/json")).unwrap().header("X-Trace", "1").unwrap()).await;
    assert!(record.ok && record.status == Some(200) && record.attempts == 1);
    assert!(record.to_json_line().ends_with("}\n"));
}

/// Completion order reads an input only when a worker is free to run it: however long the input,
/// what has been pulled is never more than what was consumed plus the workers (one input each)
/// and the records waiting in the channel (as many as the workers).
#[tokio::test]
async fn fetch_all_pulls_inputs_only_as_workers_free_up() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let s = server();
    let fetcher = Fetcher::builder().concurrency(4).retries(0).build().unwrap();
    let slots = fetcher.admission_slots();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let url = s.url("/delay/20");
    let inputs = futures_util::stream::iter(0..100_000u64).map(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        RequestSpec::get(&url).unwrap()
    });
    let mut records = fetcher.fetch_all(inputs);
    for consumed in 1..=3 * slots {
        let record = records.next().await.expect("a record");
        assert!(record.ok, "{:?}", record.error);
        let pulled = pulled.load(Ordering::SeqCst);
        assert!(pulled <= consumed + 2 * slots, "{pulled} inputs pulled with {consumed} records consumed");
    }
    assert!(pulled.load(Ordering::SeqCst) > slots, "the workers did start");
}

use super::*;

fn key(n: u32) -> Key {
    // Spread over the key space, as digests are.
    let digest = ring::digest::digest(&ring::digest::SHA256, &n.to_le_bytes());
    digest.as_ref()[..16].try_into().unwrap()
}

fn tag(n: u32, version: u32) -> Validators {
    Validators { etag: Some(format!("\"{n}-v{version}\"")), ..Validators::default() }
}

#[test]
fn what_a_completed_run_learnt_is_found_by_the_next_and_nothing_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    let store = ValidatorFile::open(&path).unwrap();
    assert_eq!(store.begin(false).unwrap(), 0);
    for n in 0..1000 {
        store.put(&key(n), &tag(n, 1));
    }
    assert_eq!(store.get(&key(1)), None, "a run reads the table it started with");
    assert_eq!(store.commit().unwrap(), Committed { kept: 1000, changed: 1000 });
    drop(store);

    let store = ValidatorFile::open(&path).unwrap();
    assert_eq!(store.len(), 1000);
    assert_eq!(store.get(&key(7)), Some(tag(7, 1)));
    assert!(matches!(ValidatorFile::open(&path), Err(StoreError::InUse { .. })), "one run at a time");
    store.begin(false).unwrap();
    store.put(&key(7), &tag(7, 2));
    store.put(&key(8), &Validators::default());
    store.put(&key(5000), &tag(5000, 1));
    store.put(&key(7), &tag(7, 3));
    assert_eq!(store.commit().unwrap(), Committed { kept: 1000, changed: 3 });
    drop(store);

    let store = ValidatorFile::open(&path).unwrap();
    assert_eq!(store.get(&key(7)), Some(tag(7, 3)), "the newest entry of a key wins");
    assert_eq!(store.get(&key(8)), None, "empty validators forget a request");
    assert_eq!(store.get(&key(5000)), Some(tag(5000, 1)));
    assert_eq!(store.get(&key(9)), Some(tag(9, 1)));
}

#[test]
fn an_interrupted_run_leaves_the_table_and_its_resume_keeps_the_log_a_new_run_empties_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    let store = ValidatorFile::open(&path).unwrap();
    store.begin(false).unwrap();
    store.put(&key(1), &tag(1, 1));
    store.commit().unwrap();
    let table = std::fs::read(&path).unwrap();
    store.begin(false).unwrap();
    store.put(&key(1), &tag(1, 2));
    store.put(&key(2), &tag(2, 1));
    // Killed: the buffer reaches the file (as on a kill -9 after a write), with half an entry.
    store.log.lock().unwrap().out.flush().unwrap();
    drop(store);
    let log = with_suffix(&path, ".log");
    let mut torn = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    torn.write_all(&[40, 0, 0, 0, 1, 2]).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), table, "the table is as the last completed run left it");

    let store = ValidatorFile::open(&path).unwrap();
    assert_eq!(store.get(&key(1)), Some(tag(1, 1)));
    assert_eq!(store.begin(true).unwrap(), 2, "the resume keeps what the interrupted run learnt");
    store.put(&key(3), &tag(3, 1));
    assert_eq!(store.commit().unwrap(), Committed { kept: 3, changed: 3 });
    drop(store);
    let store = ValidatorFile::open(&path).unwrap();
    assert_eq!((store.get(&key(1)), store.get(&key(2))), (Some(tag(1, 2)), Some(tag(2, 1))));

    store.begin(false).unwrap();
    store.put(&key(4), &tag(4, 1));
    store.log.lock().unwrap().out.flush().unwrap();
    drop(store);
    let store = ValidatorFile::open(&path).unwrap();
    store.begin(false).unwrap();
    assert_eq!(store.commit().unwrap().changed, 0, "a new run starts from an empty log");
}

#[test]
fn a_log_larger_than_a_chunk_is_sorted_in_runs_and_merged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    let store = ValidatorFile::open(&path).unwrap();
    store.begin(false).unwrap();
    for n in 0..20_000 {
        store.put(&key(n), &tag(n, 1));
    }
    store.commit().unwrap();
    store.begin(false).unwrap();
    for n in (0..30_000).step_by(3) {
        store.put(&key(n), &tag(n, 2));
    }
    for n in (0..30_000).step_by(6) {
        store.put(&key(n), &tag(n, 3));
    }
    // Chunks of about 100 entries: a hundred sorted runs on disk.
    let committed = store.commit_in_chunks(100 * 100).unwrap();
    assert_eq!(committed, Committed { kept: 20_000 + 10_000 / 3, changed: 10_000 });
    assert!(!dir.path().join("v.run0").exists(), "the runs are removed");
    drop(store);
    let store = ValidatorFile::open(&path).unwrap();
    for n in [0, 1, 3, 6, 19_999, 20_001, 29_997] {
        let want = if n % 6 == 0 {
            3
        } else if n % 3 == 0 {
            2
        } else {
            1
        };
        let found = store.get(&key(n));
        if n >= 20_000 && n % 3 != 0 {
            assert_eq!(found, None, "{n}");
        } else {
            assert_eq!(found, Some(tag(n, want)), "{n}");
        }
    }
}

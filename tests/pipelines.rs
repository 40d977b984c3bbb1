//! JSON-native pipelines: requests from data rows, `--jq` filters, pagination.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use crate::support::{by_i, outofsync, records, records_in, server};

#[test]
fn a_thousand_csv_rows_fill_a_url_template_and_carry_their_unused_fields() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("users.csv");
    let mut text = String::from("id,name,team,region\n");
    for n in 0..1000 {
        // Names with commas, quotes and spaces exercise CSV quoting and URL encoding.
        text.push_str(&format!("{n},\"user {n}, \"\"the {n}th\"\"\",team-{},r{}\n", n % 7, n % 3));
    }
    std::fs::write(&csv, text).unwrap();
    let out = dir.path().join("out.jsonl");
    let template = s.url("/anything/users/{id}?name={name}");
    outofsync()
        .args(["fetch", "-q", "--input-format", "csv", "--url-template", &template])
        .args(["--header-template", "X-Team: {team}", "-o"])
        .arg(&out)
        .arg(&csv)
        .assert()
        .code(0);
    let records = records_in(&out);
    assert_eq!(records.len(), 1000);
    for n in 0..1000u64 {
        let r = by_i(&records, n);
        assert_eq!(r["line"], n + 2, "the header is line 1");
        assert_eq!(r["id"], n.to_string());
        assert_eq!(r["meta"], json!({"region": format!("r{}", n % 3)}), "only the unused field: {r}");
        let echo = &r["json"];
        assert_eq!(echo["path"], format!("/anything/users/{n}"));
        assert_eq!(echo["args"]["name"], format!("user {n}, \"the {n}th\""), "percent-encoded on the way");
        assert_eq!(echo["headers"]["x-team"], format!("team-{}", n % 7));
    }
}

#[test]
fn jsonl_rows_fill_url_and_json_body_templates_and_missing_fields_are_named() {
    let s = server();
    let rows = concat!(
        r#"{"id": 1, "user": {"name": "ann"}, "tags": ["a", "b"], "note": "x"}"#,
        "\n",
        r#"{"id": 2, "tags": []}"#,
        "\n",
        "[1, 2]\n",
    );
    let run = outofsync()
        .args(["fetch", "-q", "--url-template", &s.url("/anything/{id}")])
        .args(["--json-template", r#"{"name": {user.name}, "tags": {tags}}"#, "-"])
        .write_stdin(rows)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let records = records(&run.stdout);
    let first = by_i(&records, 0);
    assert_eq!(first["method"], "POST");
    assert_eq!(first["json"]["json"], json!({"name": "ann", "tags": ["a", "b"]}));
    assert_eq!(first["json"]["headers"]["content-type"], "application/json");
    assert_eq!(first["meta"], json!({"note": "x"}));
    let second = by_i(&records, 1);
    assert_eq!(second["error"]["kind"], "invalid_request");
    assert_eq!(
        second["error"]["message"],
        "line 2: field \"user.name\" is missing (used by --json-template)"
    );
    assert!(by_i(&records, 2)["error"]["message"].as_str().unwrap().contains("must be a JSON object"));
}

fn item_ids(page: &Value) -> Vec<u64> {
    page["json"]
        .as_array()
        .unwrap_or_else(|| panic!("a list of ids: {page}"))
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

#[test]
fn walking_950_items_100_a_page_gives_10_pages_per_input_either_way() {
    let s = server();
    for how in ["link", "json:.next"] {
        let input: String = (0..3).map(|_| format!("{}\n", s.url("/items?total=950&per_page=100"))).collect();
        let run = outofsync()
            .args(["fetch", "-q", "-c", "2", "--paginate", how, "--jq", ".items | map(.id)", "-"])
            .write_stdin(input)
            .output()
            .unwrap();
        assert!(run.status.success(), "{how}: {}", String::from_utf8_lossy(&run.stderr));
        let records = records(&run.stdout);
        let schema: Value = serde_json::from_str(include_str!("../schema/record.schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        assert!(records.iter().all(|r| validator.is_valid(r)), "page records fit the schema");
        let mut by_input: HashMap<u64, Vec<&Value>> = HashMap::new();
        for r in &records {
            by_input.entry(r["i"].as_u64().unwrap()).or_default().push(r);
        }
        assert_eq!(by_input.len(), 3, "{how}");
        for (i, pages) in by_input {
            assert_eq!(pages.len(), 10, "{how}: input {i}");
            let numbers: HashSet<u64> = pages.iter().map(|p| p["page"].as_u64().unwrap()).collect();
            assert_eq!(numbers, (0..10).collect(), "{how}");
            let ids: Vec<u64> = pages.iter().flat_map(|p| item_ids(p)).collect();
            let distinct: HashSet<u64> = ids.iter().copied().collect();
            assert_eq!((ids.len(), distinct.len()), (950, 950), "{how}: input {i}");
            assert_eq!(distinct, (1..=950).collect(), "{how}");
            let last = pages.iter().find(|p| p["page"] == 9).unwrap();
            assert!(
                last.get("next").is_none() && pages.iter().filter(|p| p.get("next").is_some()).count() == 9
            );
        }
    }
}

#[test]
fn a_cursor_walk_sets_the_page_param_on_the_first_url() {
    let s = server();
    let run = outofsync()
        .args(["fetch", "-q", "--paginate", "json:.next_cursor", "--page-param", "cursor", "--jq", ".page"])
        .arg(s.url("/items?total=45&per_page=10"))
        .output()
        .unwrap();
    assert!(run.status.success());
    let mut pages: Vec<(u64, u64)> = records(&run.stdout)
        .iter()
        .map(|r| (r["page"].as_u64().unwrap(), r["json"].as_u64().unwrap()))
        .collect();
    pages.sort_unstable();
    assert_eq!(pages, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]);
}

#[test]
fn a_next_link_cycle_ends_the_walk_with_an_error_record() {
    let s = server();
    let run = outofsync()
        .args(["fetch", "-q", "--paginate", "link"])
        .arg(s.url("/items?page=1&per_page=10&total=100&cycle=3"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let records = records(&run.stdout);
    assert_eq!(records.len(), 4, "pages 1, 2 and 3, then the cycle");
    let cycle = records.iter().find(|r| r["page"] == 3).unwrap();
    assert_eq!(cycle["ok"], false);
    assert_eq!(cycle["error"]["kind"], "redirect");
    assert!(cycle["error"]["message"].as_str().unwrap().contains("pagination cycle"), "{cycle}");
    assert!(records.iter().filter(|r| r["page"] != 3).all(|r| r["ok"] == true));
}

#[test]
fn max_pages_bounds_a_walk_and_the_cut_shows_in_the_summary_and_the_exit_code() {
    let s = server();
    let run = outofsync()
        .args([
            "fetch",
            "--no-progress",
            "--paginate",
            "link",
            "--max-pages",
            "3",
            &s.url("/items?total=1000&per_page=10"),
        ])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "a walk with pages left is not a success");
    assert_eq!(records(&run.stdout).len(), 3);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("0 failed") && err.contains("cut: 1 paginated walk stopped at --max-pages"),
        "{err}"
    );
}

#[test]
fn a_resume_with_a_larger_max_pages_goes_on_from_the_page_where_a_walk_was_cut() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let summary = dir.path().join("summary.json");
    // 103 items, 10 a page: 11 pages; and a walk of one page, which no limit here cuts.
    let (long, short) = (s.url("/items?total=103&per_page=10"), s.url("/items?total=5&per_page=10"));
    let fetch = |max_pages: &str, resume: bool| {
        let mut run = outofsync();
        run.args([
            "fetch",
            "-q",
            "--paginate",
            "link",
            "--jq",
            ".items | map(.id)",
            "--max-pages",
            max_pages,
        ])
        .arg("--summary-json")
        .arg(&summary)
        .arg("-o")
        .arg(&out)
        .args(resume.then_some("--resume"))
        .args([&long, &short]);
        let code = run.output().unwrap().status.code();
        let summary: Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
        (code, summary["walks_cut"].clone(), summary["total"].clone())
    };
    assert_eq!(fetch("4", false), (Some(1), json!(1), json!(5)), "4 pages and 1");
    assert_eq!(fetch("4", true), (Some(1), json!(1), json!(0)), "still cut, nothing to fetch");
    assert_eq!(fetch("8", true), (Some(1), json!(1), json!(4)), "pages 4 to 7, and cut again");
    assert_eq!(fetch("100", true), (Some(0), json!(0), json!(3)), "the last three pages");
    let records = records_in(&out);
    assert_eq!(page_keys(&records), (0..11).map(|p| (0, p)).chain([(1, 0)]).collect::<Vec<_>>());
    let ids: Vec<u64> = records.iter().filter(|r| r["i"] == 0).flat_map(item_ids).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 103, "every item once");
}

#[test]
fn a_filter_failing_on_one_response_fails_only_that_record() {
    let s = server();
    let run = outofsync()
        .args(["fetch", "-q", "--jq", ".id + 1", &s.url("/json?id={5,abc,7}"), &s.url("/bytes/8")])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let records = records(&run.stdout);
    assert_eq!(by_i(&records, 0)["json"], 6);
    let failed = by_i(&records, 1);
    assert_eq!(failed["error"]["kind"], "decode");
    assert!(failed["error"]["message"].as_str().unwrap().starts_with("--jq failed"), "{failed}");
    assert!(failed.get("json").is_none());
    assert_eq!(by_i(&records, 2)["json"], 8);
    assert_eq!(by_i(&records, 3)["error"]["kind"], "decode", "binary is not JSON");
}

#[test]
fn a_filter_that_does_not_compile_is_a_usage_error_with_the_position() {
    let run =
        outofsync().args(["fetch", "--jq", ".items | map(.id", "http://127.0.0.1:1/"]).output().unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("--jq") && stderr.contains("at byte"), "{stderr}");
    let run = outofsync().args(["fetch", "--paginate", "json:.[", "http://127.0.0.1:1/"]).output().unwrap();
    assert_eq!(run.status.code(), Some(2));
    let run = outofsync().args(["fetch", "--input-format", "csv", "-"]).output().unwrap();
    assert_eq!(run.status.code(), Some(2), "csv rows need a template");
}

#[test]
fn a_page_param_with_link_pagination_is_a_usage_error() {
    let s = server();
    let run = outofsync()
        .args(["fetch", "--paginate", "link", "--page-param", "cursor", &s.url("/items?total=30")])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("--page-param cursor") && err.contains("--paginate link"), "{err}");
    assert!(run.stdout.is_empty(), "nothing fetched");
}

/// `(i, page)` of every record, sorted; panics on a key seen twice.
fn page_keys(records: &[Value]) -> Vec<(u64, u64)> {
    let mut keys: Vec<(u64, u64)> =
        records.iter().map(|r| (r["i"].as_u64().unwrap(), r["page"].as_u64().unwrap())).collect();
    keys.sort_unstable();
    let distinct: HashSet<_> = keys.iter().collect();
    assert_eq!(distinct.len(), keys.len(), "no page recorded twice");
    keys
}

#[test]
fn a_resume_goes_on_with_a_walk_from_the_page_after_the_last_one_recorded() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let urls: String = (0..6)
        .map(|n| format!("{}\n", s.url(&format!("/items?total={}&per_page=10", 50 + n * 10))))
        .collect();
    std::fs::write(&input, urls).unwrap();
    let out = dir.path().join("out.jsonl");
    let fetch = |extra: &[&str]| {
        outofsync()
            .args(["fetch", "-q", "-c", "3", "--paginate", "link", "--jq", ".items | map(.id)", "-o"])
            .arg(&out)
            .arg(&input)
            .args(extra)
            .output()
            .unwrap()
    };
    assert!(fetch(&[]).status.success());
    let full = page_keys(&records_in(&out));
    assert_eq!(full.len(), (5..11).sum::<usize>(), "6 walks of 5 to 10 pages");

    // An interruption leaves a prefix of the file (and maybe a torn line): keep 13 records and
    // half of the 14th, so some walks are done, some cut off half-way, some not begun.
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines[..13].join("\n") + "\n" + &lines[13][..lines[13].len() / 2];
    std::fs::write(&out, cut).unwrap();
    let resumed = fetch(&["--resume"]);
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let records = records_in(&out);
    assert_eq!(page_keys(&records), full, "every page once, none twice");
    // The pages of every walk still hold each item exactly once.
    for i in 0..6u64 {
        let ids: Vec<u64> = records.iter().filter(|r| r["i"] == i).flat_map(item_ids).collect();
        assert_eq!(ids.len() as u64, 50 + i * 10);
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    }
}

#[test]
fn ordered_output_keeps_every_walk_together_in_page_order() {
    let s = server();
    let input: String =
        (0..8).map(|n| format!("{}\n", s.url(&format!("/items?total={}&per_page=5", 5 + n * 7)))).collect();
    let run = outofsync()
        .args(["fetch", "-q", "-c", "4", "--ordered", "--paginate", "json:.next", "--jq", ".page", "-"])
        .write_stdin(input)
        .output()
        .unwrap();
    assert!(run.status.success());
    let keys: Vec<(u64, u64)> = records(&run.stdout)
        .iter()
        .map(|r| (r["i"].as_u64().unwrap(), r["page"].as_u64().unwrap()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted, "input order, and page order within an input");
    assert_eq!(keys.len(), (0..8).map(|n: usize| (5 + n * 7).div_ceil(5)).sum::<usize>());
}

#[test]
fn csv_rows_with_crlf_line_endings_name_their_own_line() {
    let s = server();
    // As Excel saves it: CRLF after every row, a blank row, and a row that lacks a field.
    let csv = "id,name\r\n1,ann\r\n2,bob\r\n\r\n3\r\n4,dee\r\n";
    let run = outofsync()
        .args(["fetch", "-q", "--input-format", "csv", "--url-template", &s.url("/anything/{id}"), "-"])
        .write_stdin(csv)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let records = records(&run.stdout);
    let lines: Vec<(u64, u64)> = (0..4).map(|i| (i, by_i(&records, i)["line"].as_u64().unwrap())).collect();
    assert_eq!(lines, [(0, 2), (1, 3), (2, 5), (3, 6)]);
    let short = by_i(&records, 2);
    assert_eq!(short["error"]["kind"], "invalid_request");
    assert!(
        short["error"]["message"].as_str().unwrap().starts_with("line 5: row has 1 field, the header row 2"),
        "{short}"
    );
}

#[test]
fn a_filter_with_other_than_one_output_fails_its_record_and_says_to_wrap_it() {
    let s = server();
    // Two items on the first page, one on the second.
    let pages = [s.url("/items?total=3&per_page=2&page=1"), s.url("/items?total=3&per_page=2&page=2")];
    let run = outofsync().args(["fetch", "-q", "--ordered", "--jq", ".items[].id"]).args(&pages).output();
    let first = records(&run.unwrap().stdout);
    let two = by_i(&first, 0);
    assert_eq!(two["error"]["kind"], "decode", "{two}");
    let message = two["error"]["message"].as_str().unwrap();
    assert!(message.contains("the filter gave 2 outputs: wrap it in [ … ]"), "{message}");
    assert!(by_i(&first, 1)["json"].is_u64(), "one output is the value");

    let run = outofsync().args(["fetch", "-q", "--jq", "[.items[].id]"]).args(&pages).output().unwrap();
    assert_eq!(run.status.code(), Some(0));
    let wrapped = records(&run.stdout);
    let sizes: Vec<usize> = (0..2).map(|i| by_i(&wrapped, i)["json"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, [2, 1], "an array on every page, whatever its length");

    let run = outofsync().args(["fetch", "-q", "--jq", ".items[] | select(.id > 99)", &pages[0]]).output();
    let none = &records(&run.unwrap().stdout)[0];
    assert!(none["error"]["message"].as_str().unwrap().contains("gave 0 outputs"), "{none}");
}

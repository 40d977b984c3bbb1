//! Reading an output back for `--then`: which children of its parents have no record yet.
//!
//! A parent's record comes before any of its children's, and holds the body (as the record keeps
//! it) that gave them: reading the output in order, each successful parent's values are computed
//! again and ticked off as its children's records come; what is left at the end is what the
//! interrupted run did not finish. Only parents whose children are still coming are held, so the
//! memory is that of the parents that were running when the run stopped.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead};
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::scan::EntryParent;
use crate::engine::children::{Child, Family, Then};
use crate::record::Parent;
use crate::request::{Input, parse_url};

#[derive(Deserialize)]
struct Line<'a> {
    i: u64,
    ok: bool,
    #[serde(default)]
    page: Option<u32>,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    parent: Option<EntryParent>,
    #[serde(borrow, default)]
    json: Option<&'a RawValue>,
}

/// The children of one parent still to come.
struct Pending {
    /// Each child's value, taken out once the child is done.
    values: Vec<Option<Value>>,
    left: usize,
    /// Children whose walk was cut off: the page to fetch next and its URL.
    partial: HashMap<u64, (u32, String)>,
}

/// The families of the output at `path` whose children are not all recorded, by input, each
/// input's in the order of its parents' pages. A child walk cut off at a page beyond `max_pages`
/// counts as done.
///
/// # Errors
/// The output cannot be read, or records a child twice or a child its parent does not have.
pub fn left_to_run(path: &Path, then: &Then, max_pages: u32) -> io::Result<HashMap<u64, Vec<Family>>> {
    let mut pending: HashMap<Parent, Pending> = HashMap::new();
    let reader = io::BufReader::with_capacity(1 << 20, File::open(path)?);
    let corrupt =
        |n: u64, why: String| io::Error::new(io::ErrorKind::InvalidData, format!("line {n}: {why}"));
    for (n, line) in reader.split(b'\n').enumerate() {
        let (n, line) = (n as u64 + 1, line?);
        // The output was checked and repaired as it was opened: every line is a record.
        let Ok(line) = serde_json::from_slice::<Line<'_>>(&line) else { continue };
        let Some(parent) = line.parent else {
            if let (true, Some(json)) = (line.ok, line.json) {
                let values = then.values(json.get()).unwrap_or_default();
                if !values.is_empty() {
                    let left = values.len();
                    let values = values.into_iter().map(Some).collect();
                    pending.insert(
                        Parent { i: line.i, page: line.page },
                        Pending { values, left, partial: HashMap::new() },
                    );
                }
            }
            continue;
        };
        let key = Parent { i: parent.i, page: parent.page };
        let Some(family) = pending.get_mut(&key) else {
            return Err(corrupt(
                n,
                format!(
                    "a child of input {} whose parent's children are all recorded before it, or whose parent is not there",
                    parent.i
                ),
            ));
        };
        let k = usize::try_from(line.i).unwrap_or(usize::MAX);
        if family.values.get(k).is_none_or(Option::is_none) {
            return Err(corrupt(
                n,
                format!(
                    "child {} of input {} is recorded twice, or its parent has no such child",
                    line.i, parent.i
                ),
            ));
        }
        match (line.page, line.ok, line.next) {
            (Some(page), true, Some(next)) if page.saturating_add(1) < max_pages => {
                family.partial.insert(line.i, (page + 1, next));
                continue;
            }
            _ => {}
        }
        family.values[k] = None;
        family.partial.remove(&line.i);
        family.left -= 1;
        if family.left == 0 {
            pending.remove(&key);
        }
    }
    let mut left: HashMap<u64, Vec<Family>> = HashMap::new();
    for (parent, family) in pending {
        let mut partial = family.partial;
        let children = family
            .values
            .into_iter()
            .enumerate()
            .filter_map(|(k, value)| Some((k as u64, value?)))
            .map(|(k, value)| match partial.remove(&k) {
                None => (k, Child::Value(value)),
                Some((page, url)) => (k, Child::Input(rest_of_walk(then.child(&value), page, &url))),
            })
            .collect();
        left.entry(parent.i).or_default().push(Family { parent, children });
    }
    for families in left.values_mut() {
        families.sort_by_key(|family| family.parent.page);
    }
    Ok(left)
}

/// The input that goes on with a child's walk from `page`, at `url`.
fn rest_of_walk(child: Input, page: u32, url: &str) -> Input {
    match (child, parse_url(url)) {
        (Input::Request(mut spec), Ok(url)) => {
            spec.url = url;
            Input::Page { spec, page }
        }
        (Input::Request(_), Err(why)) => {
            crate::request::InvalidInput::new(format!("cannot go on with the walk: {why}")).into()
        }
        (other, _) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_left_is_the_children_without_a_record_and_the_rest_of_cut_walks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let lines = [
            r#"{"i":0,"ok":true,"json":{"users":[{"id":1},{"id":2},{"id":3}]}}"#,
            r#"{"i":1,"ok":true,"json":{"users":[{"id":4}]}}"#,
            r#"{"i":0,"parent":{"i":0},"ok":true,"json":{}}"#,
            r#"{"i":0,"parent":{"i":1},"ok":false,"error":{"kind":"io","message":"x"}}"#,
            r#"{"i":2,"page":0,"next":"http://a.test/u/3?page=2","parent":{"i":0},"ok":true,"json":{}}"#,
            r#"{"i":2,"ok":false,"error":{"kind":"io","message":"x"}}"#,
        ];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let then = Then::new("http://a.test/u/{id}", ".users[]").unwrap();
        let left = left_to_run(&path, &then, 1000).unwrap();
        assert_eq!(left.len(), 1, "input 1's one child is recorded (failed is recorded)");
        let family = &left[&0][0];
        assert_eq!(family.parent, Parent { i: 0, page: None });
        let ks: Vec<u64> = family.children.iter().map(|(k, _)| *k).collect();
        assert_eq!(ks, [1, 2]);
        assert!(
            matches!(&family.children[1].1, Child::Input(Input::Page { page: 1, spec }) if spec.url.as_str() == "http://a.test/u/3?page=2")
        );

        std::fs::write(&path, [lines[0], lines[2], lines[2]].join("\n") + "\n").unwrap();
        assert!(left_to_run(&path, &then, 1000).unwrap_err().to_string().contains("twice"));
    }
}

//! [`Walk`]: the pages of one paginated input, one request each, in order — when the walk goes
//! on, when it ends, and the record that says it would loop.

use std::collections::HashSet;

use url::Url;

use crate::record::{ErrorKind, Record, RecordError};
use crate::request::{Input, RequestSpec};

/// The pages of one input: each page is a request of its own, started once the page before has
/// given the next one's URL.
#[derive(Debug)]
pub struct Walk {
    /// What every page's request is made from (its URL aside).
    template: RequestSpec,
    /// Every URL fetched so far: a next page among them would make the walk go round forever.
    fetched: HashSet<Url>,
    /// The page being fetched.
    page: u32,
    max_pages: u32,
}

/// What follows a page.
#[derive(Debug)]
pub enum NextPage {
    /// Fetch this page next.
    Fetch(Input),
    /// The next page was fetched before: this record ends the walk, which would loop.
    Loop(Box<Record>),
    /// The walk is over: no next page, or `max_pages` fetched.
    End,
}

/// Whether `page` is the last a walk of at most `max_pages` pages fetches.
fn last_allowed(page: u32, max_pages: u32) -> bool {
    page.saturating_add(1) >= max_pages
}

impl Walk {
    /// Whether `record` is the last its input makes: the only one, or the page its walk ends on
    /// (no next page, or the next one beyond `max_pages`).
    pub fn ends_with(record: &Record, max_pages: u32) -> bool {
        match record.page {
            None => true,
            Some(page) => record.next.is_none() || last_allowed(page, max_pages),
        }
    }

    /// Whether `max_pages` ended `record`'s walk with a next page still to fetch.
    pub fn cut_at(record: &Record, max_pages: u32) -> bool {
        record.ok && record.next.is_some() && record.page.is_some_and(|page| last_allowed(page, max_pages))
    }

    /// A walk that begins at `spec`, as page `page`, and fetches at most `max_pages` pages in
    /// all; and the input of its first page.
    pub fn start(spec: RequestSpec, page: u32, max_pages: u32) -> (Walk, Input) {
        let template = RequestSpec { url: spec.url.clone(), ..spec.clone() };
        let fetched = HashSet::from([spec.url.clone()]);
        (Walk { template, fetched, page, max_pages }, Input::Page { spec: Box::new(spec), page })
    }

    /// The page being fetched.
    pub fn page(&self) -> u32 {
        self.page
    }

    /// What follows the page just fetched (input `i`), whose request found `next`.
    pub fn after(&mut self, i: u64, next: Option<Url>) -> NextPage {
        let Some(next) = next else { return NextPage::End };
        if last_allowed(self.page, self.max_pages) {
            return NextPage::End;
        }
        self.page += 1;
        if !self.fetched.insert(next.clone()) {
            let mut record = Record {
                i,
                page: Some(self.page),
                line: self.template.line,
                url: Some(next.to_string()),
                method: Some(self.template.method.to_string()),
                ..Record::default()
            };
            record.error = Some(RecordError::new(
                ErrorKind::Redirect,
                format!("pagination cycle: the next page {next} was already fetched; the walk ends here"),
            ));
            return NextPage::Loop(Box::new(record));
        }
        let spec = RequestSpec { url: next, ..self.template.clone() };
        NextPage::Fetch(Input::Page { spec: Box::new(spec), page: self.page })
    }
}

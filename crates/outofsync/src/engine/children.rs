//! Child requests (`--then TEMPLATE --then-from JQ`): each successful parent record's body (as the
//! record keeps it, after `--jq`) gives values, and each value fills the template into a request of
//! its own, run by the same engine under the same limits, in the same run.
//!
//! # Keys
//!
//! A child's record carries `parent` (the parent's `i` and `page`) and its own `i`: its position
//! among the values the parent's body gave (and its own `page`, when it is paginated too). So a
//! child is keyed by (`parent.i`, `parent.page`, `i`, `page`): what `--resume` and `--ordered` keep
//! one record of. A parent's record is written before any of its children's, and its body is in
//! it: a resume recomputes the values from the recorded parent and runs only the children that
//! have no record yet ([`Resumed`]).
//!
//! # Memory
//!
//! A parent's children are run by the parent's own task, after the parent's page that gave them.
//! In completion order they take permits from one semaphore of the run's admission slots, so a
//! single parent with thousands of children uses every free slot, and all children of the run
//! together hold no more than the slots (besides the values of the pages they come from, which
//! were in memory as the parents' bodies). In input order, one parent runs at most
//! [`CHILDREN_AHEAD`] children at once, each with a small channel of its own that the parent drains
//! in order, so the window holds at most that many per input.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Map, Value};
use tokio::sync::{Semaphore, mpsc};

use super::drive::PAGES_AHEAD;
use super::exchange::Exchange;
use super::filter::JqFilter;
use super::run::Engine;
use crate::record::{ErrorKind, Parent, Record, RecordError};
use crate::request::template::{Escape, Template};
use crate::request::{Input, InvalidInput, RequestSpec, parse_url};

/// Children of one input run at once in input order.
pub const CHILDREN_AHEAD: usize = 8;

/// `--then` and `--then-from`: what a parent's body makes into child requests.
#[derive(Clone, Debug)]
pub struct Then {
    template: Template,
    source: String,
    from: JqFilter,
}

impl Then {
    /// Children from `template` (a URL with `{field}` placeholders, filled from each value the jq
    /// program `from` gives: an object's fields by name, any other value as `{value}`).
    ///
    /// # Errors
    /// The program does not compile.
    pub fn new(template: &str, from: &str) -> Result<Then, String> {
        let from = JqFilter::compile(from)
            .map_err(|e| format!("--then-from: {}", e.message.replacen("--jq ", "", 1)))?;
        Ok(Then { template: Template::parse(template)?, source: template.to_owned(), from })
    }

    /// The template, as given.
    pub fn template(&self) -> &str {
        &self.source
    }

    /// The program, as given.
    pub fn from(&self) -> &JqFilter {
        &self.from
    }

    /// The values a parent's JSON body gives, in order.
    ///
    /// # Errors
    /// The program fails on the body, or gives a value that is not JSON.
    pub fn values(&self, json: &str) -> Result<Vec<Value>, String> {
        let outputs = self.from.run(json).map_err(|e| e.replacen("--jq", "--then-from", 1))?;
        outputs
            .into_iter()
            .map(|val| {
                serde_json::from_str(&val.to_string())
                    .map_err(|_| format!("--then-from gave {val}, which is not JSON"))
            })
            .collect()
    }

    /// The request `value` makes: the template filled (an object's `id` becomes the record's
    /// `id`), or why it cannot be one.
    pub fn child(&self, value: &Value) -> Input {
        let row = match value {
            Value::Object(map) => map.clone(),
            other => Map::from_iter([("value".to_owned(), other.clone())]),
        };
        let url = match self.template.render(&row, Escape::Url) {
            Ok(url) => url,
            Err(field) => {
                let message = format!(
                    "--then-from gave a value without {}: {}",
                    crate::request::quote(&field),
                    crate::request::quote(&value.to_string())
                );
                return InvalidInput::new(message).into();
            }
        };
        match parse_url(&url) {
            Ok(url) => {
                let id =
                    row.get("id").map(|id| serde_json::value::to_raw_value(id).expect("JSON serialises"));
                let headers = http::HeaderMap::new();
                RequestSpec {
                    method: http::Method::GET,
                    url,
                    headers,
                    body: None,
                    id,
                    meta: None,
                    line: None,
                }
                .into()
            }
            Err(why) => InvalidInput::new(format!("--then: {why}")).into(),
        }
    }
}

/// The children of one parent record still to run.
#[derive(Debug)]
pub struct Family {
    /// The parent.
    pub parent: Parent,
    /// Each child still to run: its `i`, and the value that makes it (or, resumed, the rest of
    /// its walk).
    pub children: VecDeque<(u64, Child)>,
}

/// What a child is made from.
#[derive(Debug)]
pub enum Child {
    /// A value of the parent's body, made into a request when the child starts.
    Value(Value),
    /// A request ready to run (a resumed child's walk, from its next page).
    Input(Input),
}

/// What a resume found of an input's children: the families with children left, and whether the
/// input's own records are all there (then only the families run).
#[derive(Debug, Default)]
pub struct Resumed {
    /// Families with children left, in the order of their parents.
    pub families: Vec<Family>,
    /// The input's own records (all its pages) are in the output.
    pub parent_done: bool,
}

/// The children a resume has left to run, by input; each input takes its own when it runs.
#[derive(Clone, Debug, Default)]
pub struct ResumedChildren(Arc<Mutex<HashMap<u64, Resumed>>>);

impl ResumedChildren {
    /// The children left, by input.
    pub fn new(left: HashMap<u64, Resumed>) -> Self {
        Self(Arc::new(Mutex::new(left)))
    }

    /// Whether input `i` has children left.
    pub fn contains(&self, i: u64) -> bool {
        self.0.lock().expect("never poisoned").contains_key(&i)
    }

    fn take(&self, i: u64) -> Option<Resumed> {
        self.0.lock().expect("never poisoned").remove(&i)
    }
}

/// How a run runs children: how they share the engine, and what a resume left to run.
#[derive(Clone, Debug, Default)]
pub(crate) struct Kin {
    pub kids: Kids,
    pub resumed: ResumedChildren,
}

/// How the children of one run share the engine.
#[derive(Clone, Debug, Default)]
pub(crate) enum Kids {
    /// Completion order: every child of the run takes a permit of this semaphore.
    Shared(Arc<Semaphore>),
    /// Input order: [`CHILDREN_AHEAD`] at a time per input, their records in order.
    #[default]
    InOrder,
}

impl<T: Exchange> Engine<T> {
    /// Runs what a resume left of input `i`'s children; true if the input's own records are all
    /// there already (nothing else to run).
    pub(crate) async fn resumed_children(
        &self,
        i: u64,
        resumed: &ResumedChildren,
        kids: &Kids,
        out: &mpsc::Sender<Record>,
    ) -> bool {
        let Some(left) = resumed.take(i) else { return false };
        for family in left.families {
            self.children(family, kids, out).await;
        }
        left.parent_done
    }

    /// The children of `record` (a parent page just made, not yet sent): their family, or none;
    /// a body that `--then-from` fails on fails the parent's record (`decode`) instead.
    pub(crate) fn family(&self, record: &mut Record) -> Option<Family> {
        let then = self.config.then.as_ref()?;
        if !record.ok || record.parent.is_some() {
            return None;
        }
        let Some(json) = record.json_str() else {
            record.ok = false;
            let message = "--then-from needs a JSON body; this response has none";
            record.error = Some(RecordError::new(ErrorKind::Decode, message));
            return None;
        };
        match then.values(json) {
            Ok(values) => Some(Family {
                parent: Parent { i: record.i, page: record.page },
                children: values.into_iter().enumerate().map(|(k, v)| (k as u64, Child::Value(v))).collect(),
            }),
            Err(message) => {
                (record.ok, record.error) = (false, Some(RecordError::new(ErrorKind::Decode, message)));
                None
            }
        }
    }

    /// Runs the children of `family` to their records, handed to `out`.
    pub(crate) async fn children(&self, mut family: Family, kids: &Kids, out: &mpsc::Sender<Record>) {
        let then = self.config.then.as_ref().expect("children only with --then");
        let parent = family.parent;
        let input = |child: Child| match child {
            Child::Value(value) => then.child(&value),
            Child::Input(input) => input,
        };
        match kids {
            Kids::Shared(permits) => {
                let mut running = FuturesUnordered::new();
                loop {
                    let (more, busy) = (!family.children.is_empty(), !running.is_empty());
                    // A permit before each child starts; the running ones go on meanwhile.
                    let next = permits.clone().acquire_owned();
                    tokio::select! {
                        biased;
                        Some(()) = running.next(), if busy => {}
                        permit = next, if more => {
                            let permit = permit.expect("the semaphore is never closed");
                            let (k, child) = family.children.pop_front().expect("there is a next child");
                            let input = input(child);
                            running.push(async move {
                                self.child(k, input, parent, out).await;
                                drop(permit);
                            });
                        }
                        else => break,
                    }
                }
            }
            Kids::InOrder => {
                let mut running = FuturesUnordered::new();
                let mut order: VecDeque<mpsc::Receiver<Record>> = VecDeque::new();
                loop {
                    while order.len() < CHILDREN_AHEAD {
                        let Some((k, child)) = family.children.pop_front() else { break };
                        let (tx, rx) = mpsc::channel(PAGES_AHEAD);
                        let input = input(child);
                        running.push(async move { self.child(k, input, parent, &tx).await });
                        order.push_back(rx);
                    }
                    let Some(head) = order.front_mut() else { break };
                    // The running children are polled all the while, also while the parent waits
                    // for room in its own channel (when it is not the head of the window): a
                    // child left unpolled mid-exchange would hold its turn from the limits, and
                    // the head's children could wait for it forever.
                    let next = async {
                        let room = out.reserve().await.ok()?;
                        Some((room, head.recv().await))
                    };
                    tokio::select! {
                        biased;
                        Some(()) = running.next(), if !running.is_empty() => {}
                        next = next => match next {
                            None => return,
                            Some((room, Some(record))) => room.send(record),
                            Some((_, None)) => _ = order.pop_front(),
                        },
                    }
                }
            }
        }
    }

    /// One child to its records, each stamped with its parent. (Boxed: a child's records are
    /// made by the same code as a parent's, which runs children.)
    fn child<'a>(
        &'a self,
        k: u64,
        input: Input,
        parent: Parent,
        out: &'a mpsc::Sender<Record>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(self.records(k, input, out, Some(parent), None))
    }
}

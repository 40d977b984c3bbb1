//! `--jq`: a jq program, compiled once, applied to each JSON response (the `jaq` crates).
//!
//! The compiled program is `Send + Sync` and shared by every request; the values it runs on
//! (`jaq_json::Val`, reference-counted) live only inside one synchronous call, never across an
//! `.await`. A tree is built only here: without a filter, bodies are validated, never parsed into
//! values (see `payload`).

use std::fmt;
use std::sync::Arc;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde::de::IgnoredAny;

type Program = jaq_core::Filter<data::JustLut<Val>>;

/// A compiled jq program.
#[derive(Clone)]
pub struct JqFilter {
    program: Arc<Program>,
    source: Arc<str>,
}

/// Why a jq program did not compile: the message names the position in the program.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    /// What is wrong and where (`at 7: expected …`).
    pub message: String,
}

impl fmt::Debug for JqFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JqFilter").field(&self.source).finish()
    }
}

impl JqFilter {
    /// Compiles `code` with jq's standard library.
    ///
    /// # Errors
    /// A lexing, parsing or compilation error, with the byte offset in `code` where it was found.
    pub fn compile(code: &str) -> Result<JqFilter, FilterError> {
        let defs = jaq_core::defs().chain(jaq_std::defs()).chain(jaq_json::defs());
        let funs = jaq_core::funs().chain(jaq_std::funs()).chain(jaq_json::funs());
        let arena = Arena::default();
        let at = |rest: &str| {
            // Errors point into `code`; their offset is where the problem starts.
            let offset = (rest.as_ptr() as usize).saturating_sub(code.as_ptr() as usize).min(code.len());
            let line_start = code[..offset].rfind('\n').map_or(0, |n| n + 1);
            let shown = if code.len() > 60 {
                // By hand, not `floor_char_boundary`: that is Rust 1.91, and the rest needs 1.89.
                let end = (0..=60).rev().find(|&n| code.is_char_boundary(n)).unwrap_or(0);
                format!("{}…", &code[..end])
            } else {
                code.to_owned()
            };
            format!(
                "at byte {offset} (line {}, column {}) of {shown:?}",
                code[..offset].matches('\n').count() + 1,
                offset - line_start + 1
            )
        };
        let modules = Loader::new(defs).load(&arena, File { code, path: () }).map_err(|errors| {
            let messages: Vec<String> = errors
                .into_iter()
                .flat_map(|(_, error)| match error {
                    jaq_core::load::Error::Io(io) => io.into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
                    jaq_core::load::Error::Lex(lex) => lex
                        .into_iter()
                        .map(|(expect, rest)| format!("expected {} {}", expect.as_str(), at(rest)))
                        .collect(),
                    jaq_core::load::Error::Parse(parse) => parse
                        .into_iter()
                        .map(|(expect, rest)| format!("expected {} {}", expect.as_str(), at(rest)))
                        .collect(),
                })
                .collect();
            FilterError { message: format!("--jq does not parse: {}", messages.join("; ")) }
        })?;
        let program = jaq_core::Compiler::default().with_funs(funs).compile(modules).map_err(|errors| {
            let messages: Vec<String> = errors
                .into_iter()
                .flat_map(|(_, undefined)| undefined)
                .map(|(name, what)| format!("undefined {} {name:?} {}", what.as_str(), at(name)))
                .collect();
            FilterError { message: format!("--jq does not compile: {}", messages.join("; ")) }
        })?;
        Ok(JqFilter { program: Arc::new(program), source: code.into() })
    }

    /// The program as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Runs the program on a JSON document and returns its one output.
    ///
    /// Exactly one: a program that gives several outputs (`.items[].id`) or none (`empty`, a
    /// `select` that drops everything) is an error, not an array. Collecting them into an array
    /// would give a value whose type depends on the response — `[1,2]` on one page, `5` on a
    /// page with one item — so the records of one run would not have one shape. `[ … ]` around
    /// the program gives an array every time, and the error says so.
    ///
    /// # Errors
    /// The document is not JSON, the program fails on it (`error`, a type error…), gives other
    /// than one output, or its output cannot be written as JSON (NaN, byte strings, non-string
    /// keys).
    pub fn apply(&self, json: &str) -> Result<String, String> {
        let mut outputs = self.run(json)?;
        if outputs.len() != 1 {
            let shown = if self.source.len() > 60 { ".items[].id" } else { &self.source };
            return Err(format!(
                "--jq: the filter gave {} outputs: wrap it in [ … ] to get them as one array, \
                 e.g. --jq '[{shown}]'",
                outputs.len()
            ));
        }
        let text = outputs.remove(0).to_string();
        serde_json::from_str::<IgnoredAny>(&text).map_err(|_| {
            format!("--jq output is not JSON (NaN, a byte string or a non-string key?): {text:.200}")
        })?;
        Ok(text)
    }

    /// Runs the program and returns its outputs.
    pub(crate) fn run(&self, json: &str) -> Result<Vec<Val>, String> {
        let input = jaq_json::read::parse_single(json.as_bytes()).map_err(|e| format!("--jq input: {e}"))?;
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.program.lut, Vars::new([]));
        self.program
            .id
            .run((ctx, input))
            .map(unwrap_valr)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("--jq failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_output_is_the_value_and_any_other_count_is_an_error_that_says_wrap_it() {
        let doc = r#"{"items":[{"id":1},{"id":2}],"next":null}"#;
        assert_eq!(JqFilter::compile(".items | map(.id)").unwrap().apply(doc).unwrap(), "[1,2]");
        assert_eq!(JqFilter::compile("[.items[].id]").unwrap().apply(doc).unwrap(), "[1,2]");
        let many = JqFilter::compile(".items[].id").unwrap().apply(doc).unwrap_err();
        assert_eq!(
            many,
            "--jq: the filter gave 2 outputs: wrap it in [ … ] to get them as one array, e.g. --jq '[.items[].id]'"
        );
        let one = r#"{"items":[{"id":5}]}"#;
        assert_eq!(JqFilter::compile(".items[].id").unwrap().apply(one).unwrap(), "5", "one output");
        assert_eq!(JqFilter::compile("[.items[].id]").unwrap().apply(one).unwrap(), "[5]", "an array still");
        let none = JqFilter::compile("empty").unwrap().apply(doc).unwrap_err();
        assert!(none.contains("gave 0 outputs: wrap it in [ … ]"), "{none}");
        assert_eq!(JqFilter::compile("[empty]").unwrap().apply(doc).unwrap(), "[]");
        assert_eq!(JqFilter::compile(".next").unwrap().apply(doc).unwrap(), "null");
        let s = JqFilter::compile(r#""a\"b\n""#).unwrap().apply(doc).unwrap();
        assert_eq!(serde_json::from_str::<String>(&s).unwrap(), "a\"b\n");
    }

    #[test]
    fn errors_name_the_position_or_the_failure() {
        let e = JqFilter::compile(".items | map(").unwrap_err();
        assert!(e.message.contains("at byte"), "{e}");
        let e = JqFilter::compile(".a | nosuchfunction").unwrap_err();
        assert!(e.message.contains("nosuchfunction") && e.message.contains("at byte 5"), "{e}");
        let f = JqFilter::compile(".items | length").unwrap();
        assert!(f.apply(r#"{"items": 5}"#).is_ok(), "length of a number is its absolute value");
        let f = JqFilter::compile(".items[0]").unwrap();
        assert!(f.apply(r#"{"items": "text"}"#).unwrap_err().starts_with("--jq failed"));
        assert!(JqFilter::compile("nan").unwrap().apply("{}").unwrap_err().contains("not JSON"));
    }
}

//! The integration tests: the real binary and the library against the built-in server, started
//! in-process on 127.0.0.1:0. One test binary, one module per topic.

mod support;

mod fetch;
mod hostile;
mod lab;
mod library;
mod ordered;
mod package;
mod pipelines;
mod resilience;
mod resume;
mod server;

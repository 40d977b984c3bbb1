//! The integration tests: the real binary and the library against the built-in server, started
//! in-process on 127.0.0.1:0, and against real servers (nginx) started as child processes on free
//! 127.0.0.1 ports. One test binary, one module per topic.

mod support;

mod auth;
mod fetch;
mod hostile;
mod lab;
mod library;
mod ordered;
mod package;
mod pipelines;
mod proxies;
mod queue;
mod real_servers;
mod resilience;
mod resume;
mod server;
mod shard;

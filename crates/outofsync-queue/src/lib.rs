//! outofsync beyond one machine: a job's inputs go into a work queue, a fleet of workers fetch
//! them with the same engine as `outofsync fetch`, and one collector writes the records — still
//! exactly one per input, whichever worker dies, and under host limits held for the whole fleet.
//!
//! # Layout
//!
//! - [`queue`]: the [`Queue`] trait (what any engine must promise) and its types.
//! - [`redis`](mod@redis): [`RedisQueue`], the queue on Redis Streams; [`keys`] its key names
//!   (Redis Cluster hash tags); `scripts`, the Lua that makes each step atomic.
//! - [`submit`], [`worker`], [`collect()`]: the three roles; [`status()`] a job's state.
//! - [`limits`]: [`RedisLimits`], per-host rate, concurrency and cooldowns for the fleet,
//!   plugged into the engine through `outofsync::engine::FleetLimits`.
//! - [`task`]: an input's form in the queue.
//!
//! # The promises, and what keeps them
//!
//! - *Nothing is lost when a worker dies*: a task stays in the consumer group's pending list
//!   until its record is published; a worker renews the lease of each task it holds, and the
//!   others take over a task whose lease ran out.
//! - *Exactly one record per input*: fetching is at least once (a slow worker and the one that
//!   took over may both finish), but a record is published with its task's ack in one script,
//!   only if the ack removed the task from the pending list, so only the first finisher's goes
//!   out; and the collector drops a record whose `i` its output already holds.
//! - *A task that kills its workers ends*: after `max_deliveries` deliveries without a record
//!   it becomes a failure record instead of going round for ever.
#![deny(missing_docs)]

pub mod collect;
pub mod keys;
pub mod limits;
mod patience;
pub mod queue;
pub mod redis;
mod scripts;
pub mod status;
pub mod submit;
pub mod task;
pub mod worker;

pub use collect::{CollectOptions, Collected, collect};
pub use limits::RedisLimits;
pub use queue::{JobInfo, JobSpec, Queue, QueueError};
pub use redis::{Connections, RedisQueue};
pub use status::{Status, status};
pub use submit::Submitted;
pub use worker::{WorkerOptions, WorkerReport, work};

/// A worker's name, unique in a fleet: the host, the process and a random tail.
pub fn consumer_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}-{:04x}", std::process::id(), fastrand::u16(..))
}

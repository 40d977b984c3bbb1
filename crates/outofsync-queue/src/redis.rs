//! [`RedisQueue`]: the [`Queue`] on Redis Streams — a task stream with a consumer group of
//! workers (its pending-entries list is the set of leases), a result stream the collector reads
//! and trims, and the job's record in a hash. Works on Redis 6.2 and later (7.0 is Debian's);
//! nothing here needs Redis 8.
//!
//! Two connections, each a [`ConnectionManager`] that reconnects by itself when the server
//! restarts: one for blocking reads (`XREADGROUP … BLOCK`, `XREAD … BLOCK`), which would hold
//! up every command behind them on a shared connection, and one for everything else, where
//! commands from many tasks are pipelined on one socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Value, cmd};

use crate::keys::{GROUP, JOBS, Keys};
use crate::queue::{
    Delivery, EntryId, Finished, JobInfo, JobSpec, Published, Queue, QueueError, Remaining, Result,
};
use crate::scripts;

/// The oldest Redis with every command used: `XAUTOCLAIM`-era streams (`XPENDING … IDLE`,
/// `XTRIM … MINID`).
const OLDEST: (u32, u32) = (6, 2);

/// A job's queue on a Redis server.
#[derive(Clone)]
pub struct RedisQueue {
    keys: Keys,
    conn: Connections,
}

/// The two connections to one server (see the module documentation).
#[derive(Clone)]
pub struct Connections {
    /// For commands that answer at once.
    pub cmd: ConnectionManager,
    /// For blocking reads.
    pub block: ConnectionManager,
    /// The server's version, as `INFO` gives it.
    pub version: String,
    /// Round trips made by the queue through these connections (a script or a pipeline is
    /// one), for the benchmark's cost per request.
    pub round_trips: Arc<AtomicU64>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue").field("job", &self.keys.job).field("redis", &self.conn.version).finish()
    }
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections").field("version", &self.version).finish_non_exhaustive()
    }
}

impl Connections {
    /// Connects to the server at `url` (`redis://[user:password@]host:port[/db]`) and checks its
    /// version.
    ///
    /// # Errors
    /// The URL is bad, the server cannot be reached, or it is older than Redis 6.2.
    pub async fn open(url: &str) -> Result<Connections> {
        let client = Client::open(url)?;
        // Reconnection: quick first tries, then every 2 s at most, so a restarted server is back
        // in use within about that.
        let base = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2))
            .set_number_of_retries(8);
        let cmd_config = base.clone().set_response_timeout(Some(Duration::from_secs(30)));
        let block_config = base.set_response_timeout(Some(BLOCK_MAX + Duration::from_secs(30)));
        let mut cmd = client.get_connection_manager_with_config(cmd_config).await?;
        let block = client.get_connection_manager_with_config(block_config).await?;
        let info: String = redis::cmd("INFO").arg("server").query_async(&mut cmd).await?;
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("unknown")
            .trim()
            .to_owned();
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if (major, minor) < OLDEST {
            return Err(QueueError::Invalid(format!(
                "Redis {version} is too old: outofsync needs {}.{} or later (XPENDING IDLE, XTRIM MINID)",
                OLDEST.0, OLDEST.1
            )));
        }
        Ok(Connections { cmd, block, version, round_trips: Arc::default() })
    }

    /// The jobs on this server, oldest first.
    ///
    /// # Errors
    /// The server cannot be reached.
    pub async fn jobs(&self) -> Result<Vec<String>> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let mut con = self.cmd.clone();
        Ok(cmd("ZRANGE").arg(JOBS).arg(0).arg(-1).query_async(&mut con).await?)
    }
}

/// The longest blocking read asked for (the blocking connection waits this long and more).
pub const BLOCK_MAX: Duration = Duration::from_secs(5);

impl RedisQueue {
    /// The queue of job `job` on `conn`.
    ///
    /// # Errors
    /// The job's name cannot be a key.
    pub fn new(conn: Connections, job: &str) -> Result<RedisQueue> {
        Ok(RedisQueue { keys: Keys::new(job).map_err(QueueError::Invalid)?, conn })
    }

    /// The job's keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The connections.
    pub fn connections(&self) -> &Connections {
        &self.conn
    }

    /// The connection for one round trip (counted).
    fn con(&self) -> ConnectionManager {
        self.conn.round_trips.fetch_add(1, Ordering::Relaxed);
        self.conn.cmd.clone()
    }

    /// The blocking connection for one round trip (counted).
    fn blocking(&self) -> ConnectionManager {
        self.conn.round_trips.fetch_add(1, Ordering::Relaxed);
        self.conn.block.clone()
    }
}

impl Queue for RedisQueue {
    async fn create(&self, spec: &JobSpec) -> Result<Option<JobInfo>> {
        let k = &self.keys;
        let options = serde_json::to_string(&spec.options).expect("strings serialise");
        let created: i64 = scripts::CREATE
            .key(&k.meta)
            .key(&k.tasks)
            .key(&k.results)
            .key(&k.workers)
            .arg(GROUP)
            .arg("options")
            .arg(options)
            .arg("lease_ms")
            .arg(spec.lease.as_millis() as u64)
            .arg("max_deliveries")
            .arg(spec.max_deliveries)
            .invoke_async(&mut self.con())
            .await?;
        if created == 0 {
            return Ok(None);
        }
        let info = self.info().await?;
        // The list of jobs is a key of its own (not in the job's hash tag): a second command.
        let _: i64 =
            cmd("ZADD").arg(JOBS).arg(info.created_ms).arg(&k.job).query_async(&mut self.con()).await?;
        Ok(Some(info))
    }

    async fn info(&self) -> Result<JobInfo> {
        let fields: Vec<(String, String)> =
            cmd("HGETALL").arg(&self.keys.meta).query_async(&mut self.con()).await?;
        if fields.is_empty() {
            return Err(QueueError::NoJob(self.keys.job.clone()));
        }
        let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let number = |name: &str| get(name).and_then(|v| v.parse::<u64>().ok());
        let options = serde_json::from_str(get("options").unwrap_or("[]"))
            .map_err(|e| QueueError::Invalid(format!("the job's options do not read: {e}")))?;
        Ok(JobInfo {
            name: self.keys.job.clone(),
            spec: JobSpec {
                options,
                lease: Duration::from_millis(number("lease_ms").unwrap_or(30_000)),
                max_deliveries: number("max_deliveries").unwrap_or(5),
            },
            created_ms: number("created").unwrap_or(0),
            status: get("status").unwrap_or("unknown").to_owned(),
            submitted: number("submitted").unwrap_or(0),
            total: number("total"),
            finished: number("finished").unwrap_or(0),
            reclaims: number("reclaims").unwrap_or(0),
            poisoned: number("poisoned").unwrap_or(0),
        })
    }

    async fn push(&self, first: u64, tasks: &[(u64, Vec<u8>)]) -> Result<u64> {
        let mut invocation = scripts::PUSH.key(&self.keys.meta);
        invocation.key(&self.keys.tasks).arg(first);
        for (i, task) in tasks {
            invocation.arg(*i).arg(task.as_slice());
        }
        let (_added, now): (i64, i64) = invocation.invoke_async(&mut self.con()).await?;
        Ok(now.max(0) as u64)
    }

    async fn seal(&self, total: u64) -> Result<()> {
        let _: () = cmd("HSET")
            .arg(&self.keys.meta)
            .arg("total")
            .arg(total)
            .arg("status")
            .arg("running")
            .query_async(&mut self.con())
            .await?;
        Ok(())
    }

    async fn take(&self, consumer: &str, max: usize, block: Duration) -> Result<Vec<Delivery>> {
        let mut con = self.blocking();
        let reply: Value = cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(max.max(1))
            .arg("BLOCK")
            .arg(block.min(BLOCK_MAX).as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.keys.tasks)
            .arg(">")
            .query_async(&mut con)
            .await?;
        stream_entries(reply)?.into_iter().map(|(id, fields)| delivery(id, &fields, 0)).collect()
    }

    async fn reclaim(&self, consumer: &str, lease: Duration, max: usize) -> Result<Vec<Delivery>> {
        let reply: Value = scripts::RECLAIM
            .key(&self.keys.tasks)
            .key(&self.keys.meta)
            .arg(GROUP)
            .arg(consumer)
            .arg(lease.as_millis() as u64)
            .arg(max.max(1))
            .invoke_async(&mut self.con())
            .await?;
        let Value::Array(items) = reply else { return Ok(Vec::new()) };
        items
            .into_iter()
            .map(|item| {
                let Value::Array(mut parts) = item else { return Err(bad("a reclaimed entry")) };
                if parts.len() != 3 {
                    return Err(bad("a reclaimed entry"));
                }
                let fields = fields(parts.pop().unwrap())?;
                let before = integer(&parts[1]).unwrap_or(0);
                delivery(text(&parts[0])?, &fields, before)
            })
            .collect()
    }

    async fn renew(&self, consumer: &str, held: &[EntryId]) -> Result<()> {
        let mut invocation = scripts::RENEW.key(&self.keys.tasks);
        invocation.key(&self.keys.workers).arg(GROUP).arg(consumer);
        for id in held {
            invocation.arg(&id.0);
        }
        let _renewed: i64 = invocation.invoke_async(&mut self.con()).await?;
        Ok(())
    }

    async fn finish(&self, done: &[Finished]) -> Result<Vec<bool>> {
        let mut invocation = scripts::FINISH.key(&self.keys.tasks);
        invocation.key(&self.keys.results).key(&self.keys.meta).arg(GROUP);
        for f in done {
            invocation
                .arg(&f.id.0)
                .arg(f.i)
                .arg(if f.ok { "1" } else { "0" })
                .arg(f.kind)
                .arg(if f.poison { "1" } else { "0" })
                .arg(f.line.as_slice());
        }
        let flags: Vec<i64> = invocation.invoke_async(&mut self.con()).await?;
        Ok(flags.into_iter().map(|n| n == 1).collect())
    }

    async fn remaining(&self) -> Result<Remaining> {
        let ((status,), tasks): ((Option<String>,), u64) = redis::pipe()
            .cmd("HMGET")
            .arg(&self.keys.meta)
            .arg("status")
            .cmd("XLEN")
            .arg(&self.keys.tasks)
            .query_async(&mut self.con())
            .await?;
        match status {
            None => Err(QueueError::NoJob(self.keys.job.clone())),
            Some(status) => Ok(Remaining { sealed: status != "submitting", tasks }),
        }
    }

    async fn results(&self, after: &EntryId, max: usize, block: Duration) -> Result<Vec<Published>> {
        let mut con = self.blocking();
        let reply: Value = cmd("XREAD")
            .arg("COUNT")
            .arg(max.max(1))
            .arg("BLOCK")
            .arg(block.min(BLOCK_MAX).as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.keys.results)
            .arg(&after.0)
            .query_async(&mut con)
            .await?;
        stream_entries(reply)?
            .into_iter()
            .map(|(id, fields)| {
                let get = |name: &[u8]| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice());
                let i = get(b"i").and_then(|v| std::str::from_utf8(v).ok()?.parse().ok());
                let (Some(i), Some(line)) = (i, get(b"rec")) else { return Err(bad("a result")) };
                Ok(Published {
                    id: EntryId(id),
                    i,
                    ok: get(b"ok") == Some(b"1"),
                    kind: String::from_utf8_lossy(get(b"k").unwrap_or_default()).into_owned(),
                    line: line.to_vec(),
                })
            })
            .collect()
    }

    async fn trim(&self, upto: &EntryId) -> Result<()> {
        // MINID keeps entries from the given id on: the one after `upto`.
        let (ms, seq) = upto.0.split_once('-').ok_or_else(|| bad("an entry id"))?;
        let seq: u64 = seq.parse().map_err(|_| bad("an entry id"))?;
        let _: i64 = cmd("XTRIM")
            .arg(&self.keys.results)
            .arg("MINID")
            .arg(format!("{ms}-{}", seq + 1))
            .query_async(&mut self.con())
            .await?;
        Ok(())
    }

    async fn complete(&self, collected: u64, keep: Duration) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSET")
            .arg(&self.keys.meta)
            .arg("status")
            .arg("done")
            .arg("collected")
            .arg(collected);
        for key in self.keys.all() {
            pipe.cmd("EXPIRE").arg(key).arg(keep.as_secs().max(1)).ignore();
        }
        let _: Value = pipe.query_async(&mut self.con()).await?;
        Ok(())
    }
}

fn bad(what: &str) -> QueueError {
    QueueError::Invalid(format!("the queue holds {what} this version does not read"))
}

fn text(value: &Value) -> Result<String> {
    match value {
        Value::BulkString(bytes) => Ok(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Ok(s.clone()),
        _ => Err(bad("a value")),
    }
}

fn integer(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        _ => None,
    }
}

/// An entry's fields, as pairs of bytes.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// An entry's fields, `[name, value, …]`, as pairs of bytes.
fn fields(value: Value) -> Result<Fields> {
    let Value::Array(items) = value else { return Err(bad("an entry")) };
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(Value::BulkString(k)), Some(Value::BulkString(v))) = (items.next(), items.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// The entries of the one stream an `XREAD`/`XREADGROUP` asked for (nothing on a timeout).
fn stream_entries(reply: Value) -> Result<Vec<(String, Fields)>> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams,
        // RESP3 answers with a map of stream name to entries.
        Value::Map(pairs) => pairs.into_iter().map(|(k, v)| Value::Array(vec![k, v])).collect(),
        _ => return Err(bad("a stream reply")),
    };
    let mut out = Vec::new();
    for stream in streams {
        let Value::Array(mut parts) = stream else { return Err(bad("a stream reply")) };
        let Some(Value::Array(entries)) = parts.pop() else { return Err(bad("a stream reply")) };
        for entry in entries {
            let Value::Array(mut parts) = entry else { return Err(bad("an entry")) };
            if parts.len() != 2 {
                return Err(bad("an entry"));
            }
            let fields = fields(parts.pop().unwrap())?;
            out.push((text(&parts[0])?, fields));
        }
    }
    Ok(out)
}

fn delivery(id: String, fields: &[(Vec<u8>, Vec<u8>)], delivered_before: u64) -> Result<Delivery> {
    let get = |name: &[u8]| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let i = get(b"i").and_then(|v| std::str::from_utf8(v).ok()?.parse().ok());
    let (Some(i), Some(task)) = (i, get(b"r")) else { return Err(bad("a task")) };
    Ok(Delivery { id: EntryId(id), i, task: task.clone(), delivered_before })
}

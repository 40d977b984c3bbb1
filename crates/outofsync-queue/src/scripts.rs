//! The Lua scripts: each is one round trip, and atomic, which is what makes the queue's promises
//! hold when workers race or die between two commands.
//!
//! Times come from the server's clock (`TIME`), so workers' clocks need not agree. Numbers that
//! must keep every digit (microseconds since 1970 are past what `tostring` prints whole) are
//! written with `%.0f`.

use std::sync::LazyLock;

use redis::Script;

/// Creates a job: its record (`meta`) and its task stream with the workers' group, after
/// clearing what a job of the same name may have left. Refuses (0) if the job exists.
///
/// KEYS: meta, tasks, results, workers. ARGV: group, then field, value, … of the job's record.
pub static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'created', string.format('%.0f', now), 'submitted', 0, 'finished', 0,
  'reclaims', 0, 'poisoned', 0, 'collected', 0, 'status', 'submitting')
for k = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[k], ARGV[k + 1]) end
redis.call('XGROUP', 'CREATE', KEYS[2], ARGV[1], '0', 'MKSTREAM')
return 1
",
    )
});

/// Appends a batch of tasks if the job has exactly `first` tasks so far (so a batch retried
/// after a lost reply is not added twice). Returns `{added (0 or 1), tasks now}`.
///
/// KEYS: meta, tasks. ARGV: first, then i, task, i, task, …
pub static PUSH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local submitted = tonumber(redis.call('HGET', KEYS[1], 'submitted') or '-1')
if submitted ~= tonumber(ARGV[1]) then return {0, submitted} end
for k = 2, #ARGV, 2 do redis.call('XADD', KEYS[2], '*', 'i', ARGV[k], 'r', ARGV[k + 1]) end
local n = submitted + (#ARGV - 1) / 2
redis.call('HSET', KEYS[1], 'submitted', n)
return {1, n}
",
    )
});

/// Publishes finished inputs: for each, if its ack takes it out of the pending list (so no other
/// worker has finished it), deletes the task and adds the record to the results; else does
/// nothing. Returns 1 (published) or 0 (another worker had) for each.
///
/// KEYS: tasks, results, meta. ARGV: group, then entry id, i, ok, kind, poison, record, …
pub static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out, emitted, poisoned = {}, 0, 0
for k = 2, #ARGV, 6 do
  local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[k])
  if n == 1 then
    redis.call('XDEL', KEYS[1], ARGV[k])
    redis.call('XADD', KEYS[2], '*', 'i', ARGV[k + 1], 'ok', ARGV[k + 2], 'k', ARGV[k + 3], 'rec', ARGV[k + 5])
    emitted = emitted + 1
    if ARGV[k + 4] == '1' then poisoned = poisoned + 1 end
  end
  out[#out + 1] = n
end
if emitted > 0 then redis.call('HINCRBY', KEYS[3], 'finished', emitted) end
if poisoned > 0 then redis.call('HINCRBY', KEYS[3], 'poisoned', poisoned) end
return out
",
    )
});

/// Takes over tasks that other workers have held longer than the lease without renewing it
/// (they stopped), with how often each was delivered before. Returns `{{id, deliveries, fields}…}`.
///
/// KEYS: tasks, meta. ARGV: group, me, lease in ms, most to take.
pub static RECLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', tonumber(ARGV[3]), '-', '+', tonumber(ARGV[4]))
local ids, times = {}, {}
for _, p in ipairs(pending) do
  if p[2] ~= ARGV[2] then
    ids[#ids + 1] = p[1]
    times[p[1]] = p[4]
  end
end
if #ids == 0 then return {} end
local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), unpack(ids))
local out = {}
for _, e in ipairs(claimed) do
  if e and e[2] then out[#out + 1] = {e[1], times[e[1]], e[2]} end
end
if #out > 0 then redis.call('HINCRBY', KEYS[2], 'reclaims', #out) end
return out
",
    )
});

/// A worker's heartbeat, and the renewal of its leases: each task it still holds has its idle
/// time reset (`XCLAIM … JUSTID` leaves the delivery count alone); a task another worker has
/// taken over meanwhile is left to it. Returns how many were renewed.
///
/// KEYS: tasks, workers. ARGV: group, me, then entry ids.
pub static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
redis.call('HSET', KEYS[2], ARGV[2], string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)))
local renewed = 0
for k = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[k], ARGV[k], 1, ARGV[2])
  if #p == 1 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[k], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed
",
    )
});

/// One turn to a host under the fleet's limits: its cooldown, its rate (GCRA: a theoretical
/// arrival time one interval after the last turn, so turns are evenly spaced, never a burst),
/// and its concurrency (leases in a sorted set, scored by expiry, so a dead worker's lease ends
/// by itself). Returns 0 when granted (the rate cell spent, the lease added), else the wait in
/// microseconds, or -1 when every concurrency slot is taken.
///
/// KEYS: rate, leases, cooldown. ARGV: interval in µs (0: no rate), limit (0: none), lease id,
/// lease time in ms.
pub static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cool = tonumber(redis.call('GET', KEYS[3]) or '0')
if cool > now then return cool - now end
local interval = tonumber(ARGV[1])
if interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat > now then return tat - now end
end
local limit = tonumber(ARGV[2])
if limit > 0 then
  local ttl = tonumber(ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= limit then return -1 end
  redis.call('ZADD', KEYS[2], string.format('%.0f', now + ttl * 1000), ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ttl * 2)
end
if interval > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', now + interval), 'PX', math.ceil(interval / 1000) + 1000)
end
return 0
",
    )
});

/// Starts (or lengthens) a host's cooldown: no turn before `duration` from now.
///
/// KEYS: cooldown. ARGV: duration in µs.
pub static COOL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local untl = tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[1])
if untl > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%.0f', untl), 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
return 0
",
    )
});

/// Renews concurrency leases that are still held (a lease that expired meanwhile stays gone).
///
/// KEYS: leases. ARGV: lease time in ms, then lease ids.
pub static LEASES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[1]) * 1000
for k = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', string.format('%.0f', expiry), ARGV[k]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return 0
",
    )
});

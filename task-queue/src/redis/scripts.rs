//! The Lua scripts. Each runs atomically on the server, so a task is never
//! half-moved: acknowledged and not yet re-queued, or in two places.
//!
//! Keys of a queue named `q` share the hash tag `{q}` (one cluster slot):
//! `tq:{q}:s:0`, `:s:1`, `:s:2` (the priority streams, 0 highest),
//! `tq:{q}:delayed` (a ZSET of delayed tasks scored by their run-at time in
//! the server's milliseconds), `tq:{q}:dead` (the dead-letter stream) and
//! `tq:{q}:ids` (the task id counter). An entry holds the fields `id` (the
//! task id), `a` (failed attempts before this entry) and `p` (the payload);
//! a delayed member is `<level>:<id>:<a>:<payload>`. Times come from the
//! server's `TIME`, so producers and workers on other machines need no
//! common clock.

use redis::Script;

/// The server's time in milliseconds, as a Lua prelude.
const NOW: &str = "local t = redis.call('TIME')\n\
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n";

/// KEYS: ids, s0, s1, s2, delayed. ARGV: n, then per task: level, delay in
/// ms, payload. Returns the first id of the batch (ids are consecutive).
const SUBMIT: &str = "
local n = tonumber(ARGV[1])
local last = redis.call('INCRBY', KEYS[1], n)
local first = last - n + 1
for i = 0, n - 1 do
  local level = tonumber(ARGV[2 + i * 3])
  local delay = tonumber(ARGV[3 + i * 3])
  local payload = ARGV[4 + i * 3]
  local id = string.format('%d', first + i)
  if delay > 0 then
    redis.call('ZADD', KEYS[5], now + delay, level .. ':' .. id .. ':0:' .. payload)
  else
    redis.call('XADD', KEYS[2 + level], '*', 'id', id, 'a', '0', 'p', payload)
  end
end
return first
";

/// KEYS: delayed, s0, s1, s2, dead. ARGV: limit. Moves due delayed tasks
/// to their stream (a malformed member goes to the dead letters). Returns
/// how many moved.
const PROMOTE: &str = "
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, m in ipairs(due) do
  local a1 = string.find(m, ':', 1, true)
  local a2 = a1 and string.find(m, ':', a1 + 1, true)
  local a3 = a2 and string.find(m, ':', a2 + 1, true)
  local level = a1 and tonumber(string.sub(m, 1, a1 - 1))
  if a3 and (level == 0 or level == 1 or level == 2) then
    redis.call('XADD', KEYS[2 + level], '*', 'id', string.sub(m, a1 + 1, a2 - 1),
      'a', string.sub(m, a2 + 1, a3 - 1), 'p', string.sub(m, a3 + 1))
  else
    redis.call('XADD', KEYS[5], '*', 'id', '0', 'a', '0', 'level', '1', 'p', m,
      'err', 'malformed delayed member')
  end
  redis.call('ZREM', KEYS[1], m)
end
return #due
";

/// KEYS: stream, delayed, dead. ARGV: group, entry, id, failures (this one
/// included), level, payload, delay in ms, max attempts, error. Fails a
/// delivery: acknowledges and deletes the entry, then re-queues the task
/// (at once or through the delayed set) or dead-letters it. Returns -1 if
/// the entry was no longer pending (stale), -2 if dead-lettered, else the
/// run-at time in server milliseconds.
const FAIL: &str = "
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return -1 end
redis.call('XDEL', KEYS[1], ARGV[2])
local failures = tonumber(ARGV[4])
if failures >= tonumber(ARGV[8]) then
  redis.call('XADD', KEYS[3], '*', 'id', ARGV[3], 'a', ARGV[4], 'level', ARGV[5],
    'p', ARGV[6], 'err', ARGV[9])
  return -2
end
local delay = tonumber(ARGV[7])
if delay <= 0 then
  redis.call('XADD', KEYS[1], '*', 'id', ARGV[3], 'a', ARGV[4], 'p', ARGV[6])
  return now
end
redis.call('ZADD', KEYS[2], now + delay, ARGV[5] .. ':' .. ARGV[3] .. ':' .. ARGV[4] .. ':' .. ARGV[6])
return now + delay
";

/// KEYS: stream. ARGV: group, consumer, entry. Resets the entry's idle
/// time if this consumer still owns it (a heartbeat); `XCLAIM` with
/// `JUSTID` does not count a delivery. Returns 1, or 0 if the lease is
/// lost.
const EXTEND: &str = "
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
";

/// KEYS: stream. ARGV: group, consumer, entry. Hands back an entry this
/// consumer leased and did not start: a copy goes to the end of the
/// stream with the same failure count. Returns 1, or 0 if it was no longer
/// this consumer's.
const RELEASE: &str = "
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
local e = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
if #e == 0 then return 0 end
redis.call('XADD', KEYS[1], '*', unpack(e[1][2]))
return 1
";

/// KEYS: dead, s0, s1, s2. ARGV: entry. Moves a dead letter back to its
/// priority stream with no failures. Returns 1, or 0 if there is none.
const REQUEUE: &str = "
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return 0 end
local f = e[1][2]
local id, level, payload = '0', 1, ''
for i = 1, #f, 2 do
  if f[i] == 'id' then id = f[i + 1]
  elseif f[i] == 'level' then level = tonumber(f[i + 1]) or 1
  elseif f[i] == 'p' then payload = f[i + 1] end
end
if level ~= 0 and level ~= 2 then level = 1 end
redis.call('XADD', KEYS[2 + level], '*', 'id', id, 'a', '0', 'p', payload)
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
";

/// KEYS: dead. Deletes every dead letter; returns how many there were.
const PURGE: &str = "
local n = redis.call('XLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
";

/// KEYS: s0, s1, s2. ARGV: group, min idle in ms, a consumer name (or
/// empty for any). Removes the group's consumers that hold no pending
/// entry and have been idle for at least the min idle: those of workers
/// that died (once their entries were reclaimed) or shut down. A consumer
/// with pending entries is never removed (`XGROUP DELCONSUMER` would drop
/// its entries from the pending list, and nobody would reclaim them); the
/// check and the removal are one step, so no read slips in between. A
/// live consumer removed while idle is created again by its next read.
/// Returns how many were removed.
const CLEANUP: &str = "
local removed = 0
local min_idle = tonumber(ARGV[2])
for i = 1, 3 do
  local ok, list = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[i], ARGV[1])
  if ok then
    for _, c in ipairs(list) do
      local name, pending, idle
      for j = 1, #c, 2 do
        if c[j] == 'name' then name = c[j + 1]
        elseif c[j] == 'pending' then pending = c[j + 1]
        elseif c[j] == 'idle' then idle = c[j + 1] end
      end
      if name and pending == 0 and idle and idle >= min_idle
          and (ARGV[3] == '' or ARGV[3] == name) then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[i], ARGV[1], name)
        removed = removed + 1
      end
    end
  end
end
return removed
";

/// The scripts, loaded by hash (`EVALSHA`, `SCRIPT LOAD` again after a
/// server restart).
pub(super) struct Scripts {
    pub(super) submit: Script,
    pub(super) promote: Script,
    pub(super) fail: Script,
    pub(super) extend: Script,
    pub(super) release: Script,
    pub(super) requeue: Script,
    pub(super) purge: Script,
    pub(super) cleanup: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let timed = |body: &str| Script::new(&format!("{NOW}{body}"));
        Self {
            submit: timed(SUBMIT),
            promote: timed(PROMOTE),
            fail: timed(FAIL),
            extend: Script::new(EXTEND),
            release: Script::new(RELEASE),
            requeue: Script::new(REQUEUE),
            purge: Script::new(PURGE),
            cleanup: Script::new(CLEANUP),
        }
    }
}

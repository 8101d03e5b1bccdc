//! The Lua scripts: GCRA and the sliding-window counter, decided inside
//! Redis in one step, with exactly the arithmetic of the local limiters
//! (`gcra.rs`, `windows.rs`) in their non-rereading form
//! (`Algorithm::decide`).
//!
//! Redis runs Lua 5.1, whose numbers are doubles: integers are exact only
//! below 2^53, while times are `u64` nanoseconds (now about 2^60 since the
//! Unix epoch). So a time is a pair (seconds, nanoseconds below 10^9),
//! and only *differences* of times become plain numbers. The limiters'
//! spans (GCRA's `burst * T`, the window `W`) are capped at
//! [`MAX_SPAN_NANOS`] = 2^52 ns so that every difference the algorithms
//! compare is exact; a difference between two times further apart than
//! 2^53 ns is inexact but larger than any span, which is all its uses
//! need. The sliding counter's products of a count (`u32`) and a span go
//! beyond 2^53: they are compared exactly as base-2^24 big numbers, and
//! the two divisions (the estimate's ceiling and the earliest admitting
//! time's floor) are estimated in doubles and corrected with exact
//! comparisons. The window's alignment to the clock's origin takes
//! `now mod W` by modular doubling, every intermediate below 2^53.
//!
//! State, one string per key (`GET`/`SET ... PX`, expiring when the state
//! can no longer be told from a fresh key's):
//!
//! - GCRA: the TAT in decimal nanoseconds;
//! - sliding counter: `"<start ns> <previous> <current>"`; a state with both
//!   counts zero is deleted instead (a fresh key's state, whatever its
//!   start).
//!
//! `ARGV`: the time as seconds and nanoseconds (`ARGV[1]` empty: the
//! server's `TIME`), the milliseconds added to every expiry (0 in use; the
//! test path that injects time keeps keys for its run), the cost, then the
//! algorithm's two settings. The reply is
//! `{allowed, slack, retry_after_ns, reset_after_ns}` with `-1` for an
//! instant beyond the `u64` nanosecond range ([`Decision::RETRY_NEVER`]).
//! A key holding a string the script did not write gives the error
//! `SYSBLOCKS_CORRUPT`; another type, Redis' own `WRONGTYPE`.
//!
//! [`Decision::RETRY_NEVER`]: crate::Decision::RETRY_NEVER

/// The longest span (GCRA's `burst * emission interval`, a window) a Redis
/// limiter accepts: 2^52 ns, about 52 days, so that the script's doubles
/// hold every difference exactly.
pub const MAX_SPAN_NANOS: u64 = 1 << 52;

/// The error code a script answers for a key whose string it cannot read.
pub(crate) const CORRUPT: &str = "SYSBLOCKS_CORRUPT";

/// Time pairs, parsing and formatting, shared by both scripts.
const PRELUDE: &str = r"
local E = 1000000000
local MAXS, MAXN = 18446744073, 709551615
local KEEP = tonumber(ARGV[3])
local COST = tonumber(ARGV[4])
local KEY = KEYS[1]
local function norm(s, n)
  local c = math.floor(n / E)
  n = n - c * E
  if n < 0 then n = n + E; c = c - 1 elseif n >= E then n = n - E; c = c + 1 end
  return s + c, n
end
local function add(s, n, d) return norm(s, n + d) end
local function diff(as, an, bs, bn) return (as - bs) * E + (an - bn) end
local function lt(as, an, bs, bn) return as < bs or (as == bs and an < bn) end
local function beyond(s, n) return lt(MAXS, MAXN, s, n) end
local NS, NN
if ARGV[1] == '' then
  local t = redis.call('TIME')
  NS, NN = tonumber(t[1]), tonumber(t[2]) * 1000
else
  NS, NN = tonumber(ARGV[1]), tonumber(ARGV[2])
end
local function parse_time(v)
  if #v > 20 or not string.find(v, '^%d+$') then return nil end
  local s, n
  if #v <= 9 then s, n = 0, tonumber(v) else s, n = tonumber(string.sub(v, 1, -10)), tonumber(string.sub(v, -9)) end
  if beyond(s, n) then return nil end
  return s, n
end
local function fmt_time(s, n)
  if s == 0 then return tostring(n) end
  local t = tostring(n)
  return tostring(s) .. string.rep('0', 9 - #t) .. t
end
local function corrupt() return redis.error_reply('SYSBLOCKS_CORRUPT unreadable limiter state at ' .. KEY) end
local function store(v, ttl_ns)
  redis.call('SET', KEY, v, 'PX', math.max(math.ceil(ttl_ns / 1000000), 1) + KEEP)
end
";

/// GCRA (`ARGV[5]` = T, `ARGV[6]` = burst): `Gcra::step` and
/// `Gcra::step_cold` without the clock reread. Standalone rather than on
/// [`PRELUDE`]: the closures a prelude builds on every call, the pattern
/// captures and `tostring` concatenations were most of the script's server
/// time (see `INFO commandstats`), so the steps are inlined, a TAT beyond
/// now + tau is clamped once (the local step's recursion, which ends after
/// one level), and the TAT is written with one `string.format`.
const GCRA: &str = r"
local KEY = KEYS[1]
local COST, T = tonumber(ARGV[4]), tonumber(ARGV[5])
local TAU = T * tonumber(ARGV[6])
local E, MAXS, MAXN = 1000000000, 18446744073, 709551615
local NS, NN, KEEP
if ARGV[1] == '' then
  local t = redis.call('TIME')
  NS, NN = tonumber(t[1]), tonumber(t[2]) * 1000
else
  NS, NN = tonumber(ARGV[1]), tonumber(ARGV[2])
end
KEEP = tonumber(ARGV[3])
local ts, tn = 0, 0
local v = redis.call('GET', KEY)
if v then
  local ok = #v <= 20 and string.find(v, '^%d+$')
  if ok then
    if #v > 9 then ts, tn = tonumber(string.sub(v, 1, -10)), tonumber(string.sub(v, -9)) else tn = tonumber(v) end
  end
  if not ok or ts > MAXS or (ts == MAXS and tn > MAXN) then
    return redis.error_reply('SYSBLOCKS_CORRUPT unreadable limiter state at ' .. KEY)
  end
end
local os, on = ts, tn
local debt = (ts - NS) * E + (tn - NN)
if debt > TAU then
  -- A TAT further ahead than this quota allows: as if at now + TAU.
  ts, tn, debt = NS, NN + TAU, TAU
  local c = math.floor(tn / E)
  tn = tn - c * E
  if tn < 0 then tn = tn + E; c = c - 1 elseif tn >= E then tn = tn - E; c = c + 1 end
  ts = ts + c
elseif debt < 0 then
  debt = 0
end
local weight = COST * T
local xs, xn = ts, tn
if ts < NS or (ts == NS and tn < NN) then xs, xn = NS, NN end
xn = xn + weight
if xn >= E then
  local c = math.floor(xn / E)
  xn = xn - c * E
  if xn < 0 then xn = xn + E; c = c - 1 elseif xn >= E then xn = xn - E; c = c + 1 end
  xs = xs + c
end
local reply
if xs > MAXS or (xs == MAXS and xn > MAXN) then
  reply = {0, TAU - debt, -1, debt}
elseif debt <= TAU - weight then
  reply = {1, TAU - debt - weight, 0, debt + weight}
  if COST ~= 0 then ts, tn = xs, xn end
else
  reply = {0, TAU - debt, debt - TAU + weight, debt}
end
if ts ~= os or tn ~= on then
  local ttl = math.ceil(((ts - NS) * E + (tn - NN)) / 1000000)
  if ttl < 1 then ttl = 1 end
  if ts == 0 then v = string.format('%d', tn) else v = string.format('%d%09d', ts, tn) end
  redis.call('SET', KEY, v, 'PX', ttl + KEEP)
end
return reply
";

/// The sliding-window counter (`ARGV[5]` = W, `ARGV[6]` = limit):
/// `SlidingWindowCounter::decide_state` without the clock reread.
const SLIDING_COUNTER: &str = r"
local W, L = tonumber(ARGV[5]), tonumber(ARGV[6])
local ss, sn, p, c = 0, 0, 0, 0
local v = redis.call('GET', KEY)
if v then
  local a, b, d = string.match(v, '^(%d+) (%d+) (%d+)$')
  if not a or #b > 10 or #d > 10 then return corrupt() end
  ss, sn = parse_time(a)
  if not ss then return corrupt() end
  p, c = tonumber(b), tonumber(d)
end
local os, on, op, oc = ss, sn, p, c
local B = 16777216
local function mod(a, b)
  local q = math.floor(a / b)
  local r = a - q * b
  if r < 0 then r = r + b elseif r >= b then r = r - b end
  return r
end
local function mulmod(a, b, m)
  local r, bit = 0, 1
  while bit * 2 <= b do bit = bit * 2 end
  while bit >= 1 do
    r = mod(r * 2, m)
    if b >= bit then b = b - bit; r = mod(r + a, m) end
    bit = bit / 2
  end
  return r
end
local function aligned(s, n)
  local m = mod(mulmod(mod(s, W), mod(E, W), W) + mod(n, W), W)
  return add(s, n, -m)
end
local function big(x)
  local r = {}
  while x > 0 do
    local q = math.floor(x / B)
    r[#r + 1] = x - q * B
    x = q
  end
  return r
end
local function bmul(a, b)
  local r = {}
  for i = 1, #a + #b do r[i] = 0 end
  for i = 1, #a do
    local carry = 0
    for j = 1, #b do
      local t = r[i + j - 1] + a[i] * b[j] + carry
      carry = math.floor(t / B)
      r[i + j - 1] = t - carry * B
    end
    local k = i + #b
    while carry > 0 do
      local t = r[k] + carry
      carry = math.floor(t / B)
      r[k] = t - carry * B
      k = k + 1
    end
  end
  local n = #r
  while n > 0 and r[n] == 0 do r[n] = nil; n = n - 1 end
  return r
end
-- sign of a*b - c*d, exactly
local function mulcmp(a, b, c, d)
  local x, y = bmul(big(a), big(b)), bmul(big(c), big(d))
  if #x ~= #y then return #x < #y and -1 or 1 end
  for i = #x, 1, -1 do
    if x[i] ~= y[i] then return x[i] < y[i] and -1 or 1 end
  end
  return 0
end
-- ceil(a*b/w) for a result at most a
local function divceil(a, b, w)
  local q = math.ceil(a * b / w)
  if q < 0 then q = 0 end
  while q > 0 and mulcmp(q - 1, w, a, b) >= 0 do q = q - 1 end
  while mulcmp(q, w, a, b) < 0 do q = q + 1 end
  return q
end
-- floor(a*b/d) for a result below 2^52
local function divfloor(a, b, d)
  local q = math.floor(a * b / d)
  while q > 0 and mulcmp(q, d, a, b) > 0 do q = q - 1 end
  while mulcmp(q + 1, d, a, b) <= 0 do q = q + 1 end
  return q
end
local function after(k)
  local xs, xn = add(ss, sn, k * W)
  if beyond(xs, xn) then return nil end
  return xs, xn
end
local function until_(xs, xn)
  if not xs then return -1 end
  local d = diff(xs, xn, NS, NN)
  if d < 0 then d = 0 end
  return d
end
-- roll
if p == 0 and c == 0 then
  ss, sn = aligned(NS, NN)
elseif lt(NS, NN, ss, sn) then
  ss, sn = NS, NN
else
  local es, en = after(1)
  if es and not lt(NS, NN, es, en) then
    local fs, fn = add(es, en, W)
    if c > 0 and (beyond(fs, fn) or lt(NS, NN, fs, fn)) then
      ss, sn, p, c = es, en, c, 0
    else
      ss, sn = aligned(NS, NN)
      p, c = 0, 0
    end
  end
end
local elapsed = diff(NS, NN, ss, sn)
local ew = math.min(elapsed, W)
local function estimate() return divceil(p, W - ew, W) + c end
local function fits(prev, cur, extra)
  if cur + extra > L then return false end
  if prev == 0 then return true end
  return mulcmp(prev, W - ew, L - cur - extra, W) <= 0
end
local function earliest(prev, cur, extra)
  local need = cur + extra
  if need > L then return nil end
  if prev == 0 then return 0 end
  local r = L - need
  if r >= prev then return 0 end
  local e = W - divfloor(r, W, prev)
  if e < W then return e end
  return nil
end
local reset = 0
if c > 0 then reset = until_(after(2)) elseif p > 0 then reset = until_(after(1)) end
local reply
if fits(p, c, COST) then
  c = c + COST
  local rem = math.max(L - estimate(), 0)
  if c > 0 then reset = until_(after(2)) end
  reply = {1, rem, 0, reset}
else
  local rem = math.max(L - estimate(), 0)
  local e = earliest(p, c, COST)
  local as, an
  if e then
    as, an = add(ss, sn, e)
    if beyond(as, an) then as = nil end
  else
    local xs, xn = after(1)
    if xs then
      local e2 = earliest(c, 0, COST) or W
      as, an = add(xs, xn, e2)
      if beyond(as, an) then as = nil end
    end
  end
  local retry = -1
  if as then retry = math.max(until_(as, an), 1) end
  reply = {0, rem, retry, reset}
end
if p == 0 and c == 0 then
  if v then redis.call('DEL', KEY) end
elseif ss ~= os or sn ~= on or p ~= op or c ~= oc then
  local k = 1
  if c > 0 then k = 2 end
  store(fmt_time(ss, sn) .. ' ' .. tostring(p) .. ' ' .. tostring(c), k * W - elapsed)
end
return reply
";

/// The GCRA script's source.
pub(crate) fn gcra_source() -> String {
    GCRA.to_owned()
}

/// The sliding-window counter script's source.
pub(crate) fn sliding_counter_source() -> String {
    [PRELUDE, SLIDING_COUNTER].concat()
}

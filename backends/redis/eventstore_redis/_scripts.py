"""The Lua scripts of the native layout, and how they are called.

Redis runs a script atomically but does not roll it back, so each script does every
check before its first write. Scripts are loaded once (``SCRIPT LOAD``), called with
``EVALSHA`` and reloaded when the server answers ``NOSCRIPT`` (after a restart or a
``SCRIPT FLUSH``).

Results are structured replies, never Redis errors, so that a conflict is told apart
from a server failure without parsing messages: the first element is a status code.
"""

from __future__ import annotations

__all__ = [
    "APPEND_ALL_STORED",
    "APPEND_CONFLICT",
    "APPEND_DAMAGED",
    "APPEND_OK",
    "APPEND_PARTIAL",
    "APPEND_SCRIPT",
    "APPEND_TRIMMED",
    "DELETE_SCRIPT",
    "IMPORT_CONFLICT",
    "IMPORT_DAMAGED",
    "IMPORT_ID_TAKEN",
    "IMPORT_OK",
    "IMPORT_SCRIPT",
    "STAMP",
    "STATE_SCRIPT",
    "Script",
]

import hashlib
from collections.abc import Awaitable
from typing import Any, Final, Protocol

from redis.exceptions import NoScriptError

from ._client import cancel_requests, deliver_swallowed_cancel

# The end of both writing scripts: retention and (single server) the run and session
# indexes. It needs ARGV[2] = run id, ARGV[3] = retention cap ('0' = none), ARGV[4] =
# session index prefix ('' = the client maintains the indexes), and the locals `last`
# (the run's last seq before), `new_last`, `before` and `session` (the run's session
# before and after, or false).
_TRIM_AND_INDEX: Final = r"""
local cap = tonumber(ARGV[3])
if cap > 0 and new_last > cap then
  redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-0', new_last - cap + 1))
end
if ARGV[4] ~= '' then
  if last == 0 then redis.call('ZADD', KEYS[4], 0, ARGV[2]) end
  if session ~= before then
    if before then redis.call('ZREM', ARGV[4] .. before, ARGV[2]) end
    if session then redis.call('ZADD', ARGV[4] .. session, 0, ARGV[2]) end
  end
end
"""

# Eviction (a maxmemory-policy such as allkeys-lru) or a stray DEL removes single keys:
# a run has its stream, its id index and its meta hash, or none of them. Both writing
# scripts check that before their first write, at the cost of one EXISTS, and reply
# with what is there instead of letting XADD fail (meta gone: its seq 1 is behind the
# stream) or write on (stream gone: a stream starting at seq last + 1; ids gone: a
# retried append stored twice). It needs the local `meta` (HMGET of last, session).
_DAMAGED: Final = r"""
local function damaged()
  return {5, meta[1] or '', redis.call('EXISTS', KEYS[1]), redis.call('EXISTS', KEYS[2]),
    redis.call('XLEN', KEYS[1])}
end
if redis.call('EXISTS', KEYS[1], KEYS[2]) ~= (meta[1] and 2 or 0) then return damaged() end
"""

# The first XADD of both writing scripts, through pcall: its id is below the stream's
# last one only when the meta's `last` is behind the stream (damage), which is
# reported like missing keys; any other error (OOM, WRONGTYPE) is the server's. It
# needs the locals `entry_id` and `entry`; later XADDs of the batch cannot fail so.
_FIRST_XADD: Final = r"""
    local added = redis.pcall('XADD', KEYS[1], entry_id, 'e', entry)
    if type(added) == 'table' then
      if added.err and string.find(added.err, 'smaller', 1, true) then return damaged() end
      return added
    end
"""

# Writes entry i of a batch (locals `i`, `entry_id`, `entry`, `event_id`, `seq`) and
# records its event id: the same in the append and the import script.
_WRITE_ENTRY: Final = (
    r"""
  if i == 1 then
"""
    + _FIRST_XADD
    + r"""
  else
    redis.call('XADD', KEYS[1], entry_id, 'e', entry)
  end
  redis.call('HSET', KEYS[2], event_id, seq)
"""
)

# The commit time as chrono writes a DateTime<Utc> (what serde puts in behest's
# envelopes): RFC 3339 in UTC with "Z" and the fewest of 0, 3, 6 or 9 fraction digits
# that hold the value (TIME has microseconds, so 0, 3 or 6). It needs the locals
# `sec` and `us` (the server's TIME) and leaves the text in the local `stamp`.
# Redis' Lua has no os.date: the civil date comes from the days since 1970-01-01 by
# H. Hinnant's algorithm.
STAMP: Final = r"""
local days = math.floor(sec / 86400)
local rem = sec - days * 86400
local z = days + 719468
local era = math.floor(z / 146097)
local doe = z - era * 146097
local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
  - math.floor(doe / 146096)) / 365)
local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
local mp = math.floor((5 * doy + 2) / 153)
local day = doy - math.floor((153 * mp + 2) / 5) + 1
local month = mp < 10 and mp + 3 or mp - 9
local year = yoe + era * 400
if month <= 2 then year = year + 1 end
local fraction = ''
if us % 1000 ~= 0 then
  fraction = string.format('.%06d', us)
elseif us ~= 0 then
  fraction = string.format('.%03d', us / 1000)
end
local stamp = string.format('%04d-%02d-%02dT%02d:%02d:%02d', year, month, day,
  math.floor(rem / 3600), math.floor(rem % 3600 / 60), rem % 60) .. fraction .. 'Z'
"""

APPEND_OK: Final = 0
APPEND_ALL_STORED: Final = 1
APPEND_PARTIAL: Final = 2
APPEND_CONFLICT: Final = 3
APPEND_TRIMMED: Final = 4
APPEND_DAMAGED: Final = 5

# KEYS: log, ids, meta [, runs index]. ARGV: expected seq ('' = none), run id,
# retention cap ('0' = none), session index prefix ('' = the client maintains the
# indexes, as in a cluster), then per event: event id, session id if the event is a
# RunStarted else '', event JSON.
# Replies: {0, previous last seq, time s, time us, previous session or ''} on commit,
# {1, seq, envelope JSON, ...} when every id is stored, {2, how many are} when only some
# are, {3, actual last seq} on an expected_seq mismatch, {4, seq, first kept stream id}
# when an id is stored but its entry was trimmed by retention, {5, meta last or '',
# stream exists, id index exists, stream length} when the run's keys are damaged
# (nothing written).
APPEND_SCRIPT: Final = (
    r"""
local n = (#ARGV - 4) / 3
local found = 0
local seqs = {}
for i = 1, n do
  local s = redis.call('HGET', KEYS[2], ARGV[2 + 3 * i])
  if s then
    found = found + 1
    seqs[i] = s
  end
end
if found > 0 then
  if found < n then return {2, found} end
  local out = {1}
  for i = 1, n do
    local id = seqs[i] .. '-0'
    local entry = redis.call('XRANGE', KEYS[1], id, id)
    if not entry[1] then
      local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
      return {4, tonumber(seqs[i]), first[1] and first[1][1] or '0-0'}
    end
    out[2 * i] = tonumber(seqs[i])
    out[2 * i + 1] = entry[1][2][2]
  end
  return out
end
local meta = redis.call('HMGET', KEYS[3], 'last', 'session')
local last = tonumber(meta[1] or '0')
"""
    + _DAMAGED
    + r"""
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= last then return {3, last} end
local before = meta[2]
local session = before
local t = redis.call('TIME')
local sec, us = tonumber(t[1]), tonumber(t[2])
"""
    + STAMP
    + r"""
local head = ',"run_id":"' .. ARGV[2] .. '","session_id":'
local tail = ',"emitted_at":"' .. stamp .. '"}'
for i = 1, n do
  local event_id = ARGV[2 + 3 * i]
  local started = ARGV[3 + 3 * i]
  if started ~= '' then session = started end
  local seq = string.format('%d', last + i)
  local sid = session and ('"' .. session .. '"') or 'null'
  local entry_id = seq .. '-0'
  local entry = '{"event_id":"' .. event_id .. '","seq":' .. seq .. head .. sid
    .. ',"event":' .. ARGV[4 + 3 * i] .. tail
"""
    + _WRITE_ENTRY
    + r"""end
local new_last = last + n
redis.call('HSET', KEYS[3], 'last', new_last, 'last_at', stamp)
if last == 0 then redis.call('HSET', KEYS[3], 'first_at', stamp) end
if session and session ~= before then redis.call('HSET', KEYS[3], 'session', session) end
"""
    + _TRIM_AND_INDEX
    + r"""
return {0, last, sec, us, before or ''}
"""
)

IMPORT_OK: Final = 0
#: The same code as the append script's conflict, so both map to one error.
IMPORT_CONFLICT: Final = APPEND_CONFLICT
IMPORT_ID_TAKEN: Final = APPEND_PARTIAL
IMPORT_DAMAGED: Final = APPEND_DAMAGED

# Stores envelopes copied from another store verbatim (``import_envelopes``): the
# client built each envelope's JSON with its own event id, seq, session and time, so
# unlike the append script this one assigns nothing but the stream ids, which are the
# seqs following the expected last seq.
# KEYS: log, ids, meta [, runs index]. ARGV: expected last seq, run id, retention cap
# ('0' = none), session index prefix ('' = the client maintains the indexes), the
# run's session after the import ('' = none), first envelope's emitted_at, last
# envelope's emitted_at, then per envelope: event id, envelope JSON.
# Replies: {0, previous session or ''} on commit, {3, actual last seq} when the run's
# last seq is not the expected one, {2} when an event id is taken, {5, ...} when the
# run's keys are damaged, as for the append script (nothing written in each case).
IMPORT_SCRIPT: Final = (
    r"""
local n = (#ARGV - 7) / 2
local meta = redis.call('HMGET', KEYS[3], 'last', 'session')
local last = tonumber(meta[1] or '0')
"""
    + _DAMAGED
    + r"""
local expected = tonumber(ARGV[1])
if last ~= expected then return {3, last} end
-- An event id may be stored once per run: refuse (before any write) ids that are
-- already stored, or repeated within the batch.
local seen = {}
for i = 1, n do
  local event_id = ARGV[6 + 2 * i]
  if seen[event_id] or redis.call('HGET', KEYS[2], event_id) then return {2} end
  seen[event_id] = true
end
local before = meta[2]
for i = 1, n do
  local seq = string.format('%d', expected + i)
  local event_id = ARGV[6 + 2 * i]
  local entry_id, entry = seq .. '-0', ARGV[7 + 2 * i]
"""
    + _WRITE_ENTRY
    + r"""end
local new_last = expected + n
redis.call('HSET', KEYS[3], 'last', new_last, 'last_at', ARGV[7])
if last == 0 then redis.call('HSET', KEYS[3], 'first_at', ARGV[6]) end
local session = false
if ARGV[5] ~= '' then session = ARGV[5] end
if session then
  redis.call('HSET', KEYS[3], 'session', session)
elseif before then
  redis.call('HDEL', KEYS[3], 'session')
end
"""
    + _TRIM_AND_INDEX
    + r"""
return {0, before or ''}
"""
)

# KEYS: log, ids, meta, receipt [, runs index]. ARGV: run id, session index prefix
# ('' = the client maintains the indexes), receipt lifetime in ms. Reply: {events
# removed, the run's session or ''}.
#
# The receipt key (<prefix>{<run_id>}:deleted:<token>, a token per delete_run call)
# keeps a delete's reply for a short while: redis-py re-sends the same EVALSHA after
# a lost connection, and a re-sent delete whose first run did delete finds the
# receipt and replies what the first run did, rather than 0 for a run now gone.
DELETE_SCRIPT: Final = r"""
local done = redis.call('GET', KEYS[4])
if done then
  local space = string.find(done, ' ', 1, true)
  return {tonumber(string.sub(done, 1, space - 1)), string.sub(done, space + 1)}
end
local count = redis.call('XLEN', KEYS[1])
local session = redis.call('HGET', KEYS[3], 'session')
if redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) > 0 then
  redis.call('SET', KEYS[4], count .. ' ' .. (session or ''), 'PX', ARGV[3])
end
if ARGV[2] ~= '' then
  redis.call('ZREM', KEYS[5], ARGV[1])
  if session then redis.call('ZREM', ARGV[2] .. session, ARGV[1]) end
end
return {count, session or ''}
"""

# What reads need to tell a run that does not exist from a damaged one, atomically.
# KEYS: log, ids, meta. Reply: {meta last or '', stream exists, id index exists,
# stream length}: the shape of the writing scripts' "damaged" reply without its code.
STATE_SCRIPT: Final = r"""
return {redis.call('HGET', KEYS[3], 'last') or '', redis.call('EXISTS', KEYS[1]),
  redis.call('EXISTS', KEYS[2]), redis.call('XLEN', KEYS[1])}
"""


class _Client(Protocol):
    def execute_command(self, *args: Any, **options: Any) -> Awaitable[Any]: ...


class Script:
    """One Lua script: ``EVALSHA`` first, ``SCRIPT LOAD`` and again on ``NOSCRIPT``."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def load(self, client: _Client) -> None:
        """Load the script (on every primary, for a cluster client)."""
        # The command name "SCRIPT LOAD" (one string) is what redis-py's cluster
        # client routes to every primary.
        await client.execute_command("SCRIPT LOAD", self.source)

    async def __call__(self, client: _Client, keys: list[str], args: list[str | int]) -> Any:
        """Run the script; a missing script is loaded and the call made once more.

        The retry is safe: ``NOSCRIPT`` means the server ran nothing.
        """
        before = cancel_requests()
        try:
            reply = await client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.load(client)
            reply = await client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        deliver_swallowed_cancel(before)
        return reply

-- Applies one fetched batch of a partition, exactly once.
-- KEYS[1] offset watermark, KEYS[2] due index (windows), KEYS[3] ready index
-- (chats), then every other key the batch may touch, each named by a label in
-- ARGV: 'c'/'s'/'q' .. chat ref for a chat's state, dedupe set and queue, 'w' ..
-- member for a window and 'm' .. member for its list of messages, 'o' for the
-- partition's buffered index (first offset of every open window and queued
-- bundle, and of each chat's first queued message of granularity none).
-- ARGV[1] now (ms), ARGV[2] last offset of the batch, ARGV[3] the watermark the
-- caller last saw, ARGV[4] how many message ids a chat remembers in granularity
-- none and ARGV[5] for how long (ms), ARGV[6] n, then the n labels of
-- KEYS[4..3+n]; then how many chats, and
-- per chat its ref and the sealed, os, oe, og and oep fields of its state as the
-- caller read them ('' for none); then the batch's groups, in the order of
-- their first offsets. A group is the messages of one chat that the caller
-- found bound for the same window (or a single message): chat ref, granularity
-- name, granularity (ms), window start (ms), timestamp of its first message
-- (ms), epoch, flush delay (ms), offset of its first message, new chat flag,
-- details record (empty when it equals the chat's previous group's in this
-- batch: most of a batch repeats them), n, then its n message entries (id and
-- record), in offset order. A chat's messages of granularity none are one
-- group with no window: chat ref, 'none', n, details record, then the n pairs
-- of offset and message id, then their n queue entries (below). The caller
-- groups a chat's windowed messages only where the window the script picks
-- cannot depend on their timestamps; what it cannot tell comes one message a
-- group.
-- The caller chose the window keys from the chats' state, as it read it or as
-- the previous batch left it; if a chat's state is not that (a flusher sealed a
-- window, another consumer opened one), the script changes nothing and returns
-- {-1, -1}: the caller reads the state again. Otherwise it returns the counts
-- of messages applied and duplicates dropped, then the new open window of each
-- chat whose open window it moved (chat ref, start, end, granularity, epoch),
-- so that the caller's next batch of the chat needs no read.
-- A watermark below the one the caller last saw means that Redis lost
-- acknowledged writes (a failover to a lagging replica, an older AOF): the
-- script changes nothing and returns {-2, watermark}, and the caller replays
-- from Kafka (see processor). A watermark above it means that another consumer
-- (a zombie, or the owner before a rebalance) applied part of this batch: the
-- script changes nothing and returns {-3, watermark}, and the caller sends the
-- rest again. A batch wholly at or below the watermark changes nothing, so the
-- batch is idempotent as a whole.
-- A window's details are the latest seen; writing them again is skipped when this
-- batch already wrote the same bytes to the same window.
-- A window's message entries (id and record) are the elements of a list beside
-- its hash, in arrival order, which keeps its name when the window is sealed
-- into a bundle; the hash holds the rest (details, new chat flag, and the field
-- '\0l', which makes a version before lists refuse the bundle rather than
-- deliver it without them). Redis packs a list's elements back to back into
-- listpacks of a few KiB at a few bytes each, where a hash field per message
-- would cost it about 75 B of its own, and a push moves no bytes through Lua.
-- The version before packed entries into chunks of the hash ('\0o', '\0c1' ...),
-- which every batch read into Lua and wrote back; Redis hashes every byte of
-- every string that enters Lua, and that cost a third of this script's time.
-- Store.Claim still reads windows written so. Upstream duplicates (a message id
-- again, at a new offset) are kept here and dropped when the bundle is read
-- (Store.Claim); granularity none drops them on append.
-- A message of granularity none is not a bundle of its own but an entry of its
-- chat's queue, '\0' .. offset .. SEP .. epoch .. SEP .. new chat flag .. SEP ..
-- record (built by the caller), and its chat's details are the chat's state
-- field 'nd': a key and an index entry per message cost Redis three times what
-- the message itself does.
-- The buffered index holds, under the chat ref, the offset of the chat's first
-- such entry.
-- The last key is the waiting hash (waiting.prelude.lua).
local wm = tonumber(redis.call('GET', KEYS[1]) or '-1')
if wm < tonumber(ARGV[3]) then return {-2, wm} end
if tonumber(ARGV[2]) <= wm then return {0, 0} end
if wm > tonumber(ARGV[3]) then return {-3, wm} end
local K = {}
local nk = tonumber(ARGV[6])
for i = 1, nk do K[ARGV[6 + i]] = KEYS[3 + i] end
local function key(label)
  return K[label] or error('append: undeclared key ' .. label)
end
local a = 7 + nk
-- The state of the batch's chats, read once here and kept current below.
local state = {}
for _ = 1, tonumber(ARGV[a]) do
  local c = key('c' .. ARGV[a + 1])
  local st = redis.call('HMGET', c, 'sealed', 'os', 'oe', 'og', 'oep')
  for j = 1, 5 do
    if (st[j] or '') ~= ARGV[a + 1 + j] then return {-1, -1} end
  end
  state[c] = st
  a = a + 6
end
local now, cap, seenFor, SEP = tonumber(ARGV[1]), tonumber(ARGV[4]), ARGV[5], '\31'
local applied, dups = 0, 0
local chatDet, written, flagged = {}, {}, {}
local moved, movedOrder = {}, {} -- chat key -> ref, of the chats whose open window moved
local packed, touched = {}, {} -- messages' list -> entries of this batch; lists in order
-- Calls cmd on key k (and option opt, if any) with list[from..to], at most
-- 400 of them a call: unpack passes its values on Lua's C stack, which holds
-- 8 000. Returns the last call's reply and the sum of the replies.
local function each400(cmd, k, opt, list, from, to)
  local r, sum = 0, 0
  for j = from, to, 400 do
    local last = math.min(j + 399, to)
    if opt then r = redis.call(cmd, k, opt, unpack(list, j, last)) else r = redis.call(cmd, k, unpack(list, j, last)) end
    sum = sum + r
  end
  return r, sum
end
-- Queues a chat's messages of granularity none, due now, behind its queue:
-- the n pairs of offset and id from ARGV[p] on, then their n entries. Each
-- call from Lua, and each value it passes, costs Redis beyond the command's
-- own work, so the ids and entries go to Redis straight from ARGV: one ZADD
-- of every id and one RPUSH of every entry (a call per message cost up to a
-- fifth more; docs/performance.md). A duplicate id (seen before, or twice in
-- the group) makes the ZADD add fewer than n; only then is each id's score
-- read, and a message is new where its id now holds its own offset (no
-- offset is applied twice: the watermark refuses a replay).
local function queueNone(chat, n, det, p)
  local seen, e = key('s' .. chat), p + 2 * n
  local list, from, to = ARGV, e, e + n - 1
  local _, added = each400('ZADD', seen, 'NX', ARGV, p, e - 1)
  local first = ARGV[p]
  if added < n then
    list, from, to, first = {}, 1, 0, nil
    for j = 0, n - 1 do
      local off = ARGV[p + 2 * j]
      if tonumber(redis.call('ZSCORE', seen, ARGV[p + 2 * j + 1])) == tonumber(off) then
        to = to + 1
        list[to] = ARGV[e + j]
        first = first or off
      end
    end
    dups = dups + n - to
  end
  if to < from then return end
  applied = applied + to - from + 1
  local over = redis.call('ZCARD', seen) - cap
  if over > 0 then redis.call('ZREMRANGEBYRANK', seen, 0, over - 1) end
  -- the ids of a chat that goes quiet go with it, not stay for good
  redis.call('PEXPIRE', seen, seenFor)
  -- The chat's earlier entries, if any, keep their lower offset; on an empty
  -- queue the index's entry is this group's first.
  if each400('RPUSH', key('q' .. chat), false, list, from, to) == to - from + 1 then
    redis.call('ZADD', key('o'), first, chat)
  else
    redis.call('ZADD', key('o'), 'NX', first, chat)
  end
  redis.call('HSET', key('c' .. chat), 'nd', det)
  waiting('b', chat, to - from + 1)
  redis.call('ZADD', KEYS[3], 'NX', now, chat)
end
local i = a + 1
while i <= #ARGV do
  local chat, gname = ARGV[i], ARGV[i+1]
  if gname == 'none' then
    local n, det = tonumber(ARGV[i+2]), ARGV[i+3]
    if det == '' then det = chatDet[chat] else chatDet[chat] = det end
    queueNone(chat, n, det, i + 4)
    i = i + 4 + 3 * n
  else
    local g, start, ts, epoch = tonumber(ARGV[i+2]), tonumber(ARGV[i+3]), tonumber(ARGV[i+4]), ARGV[i+5]
    local delay, off, isnew, det, n = tonumber(ARGV[i+6]), ARGV[i+7], ARGV[i+8], ARGV[i+9], tonumber(ARGV[i+10])
    local first = i + 11
    i = first + n
    if det == '' then det = chatDet[chat] else chatDet[chat] = det end
    local c = key('c' .. chat)
    local st = state[c]
    local sealed = tonumber(st[1] or '0')
    local wend = start + g
    if st[4] and st[4] ~= gname and st[5] == epoch and tonumber(st[3]) > sealed
        and tonumber(st[2]) <= ts and ts < tonumber(st[3]) then
      -- the granularity changed while this window was open: it keeps its size.
      gname, start, wend = st[4], tonumber(st[2]), tonumber(st[3])
    elseif start < sealed then
      -- its window was already sealed: never drop, join the chat's first
      -- window after the sealed mark. Not the window of now: a lagging
      -- consumer's next messages of this chat may still fall into earlier
      -- open windows, and would be delivered before this one.
      start = sealed - sealed % g
      if start < sealed then start = start + g end
      wend = start + g
    end
    local member = chat .. SEP .. gname .. SEP .. string.format('%d', start) .. SEP .. string.format('%d', wend) .. SEP .. epoch
    local w, l = key('w' .. member), key('m' .. member)
    local entries = packed[l]
    if not entries then
      entries = {}
      packed[l] = entries
      touched[#touched + 1] = {l, w}
      if redis.call('ZADD', KEYS[2], 'NX', wend + delay, member) == 1 then
        waiting('w', chat, 1)
        -- a new window: its first message's offset is the one to keep.
        redis.call('ZADD', key('o'), off, member)
        if start >= tonumber(st[2] or '0') then
          local from, to = string.format('%d', start), string.format('%d', wend)
          redis.call('HSET', c, 'os', from, 'oe', to, 'og', gname, 'oep', epoch)
          st[2], st[3], st[4], st[5] = from, to, gname, epoch
          if not moved[c] then
            moved[c] = chat
            movedOrder[#movedOrder + 1] = c
          end
        end
      end
    end
    for j = first, i - 1 do entries[#entries + 1] = ARGV[j] end
    if written[w] ~= det then
      redis.call('HSET', w, '\0d', det)
      written[w] = det
    end
    if isnew == '1' and not flagged[w] then
      redis.call('HSET', w, '\0n', '1')
      flagged[w] = true
    end
    applied = applied + n
  end
end
for _, t in ipairs(touched) do
  local l, w = t[1], t[2]
  if each400('RPUSH', l, false, packed[l], 1, #packed[l]) == #packed[l] then redis.call('HSET', w, '\0l', '') end
end
redis.call('SET', KEYS[1], ARGV[2])
local out = {applied, dups}
for _, c in ipairs(movedOrder) do
  local st = state[c]
  out[#out + 1] = moved[c]
  for j = 2, 5 do out[#out + 1] = st[j] end
end
return out

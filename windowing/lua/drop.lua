-- Drops every pending window and bundle of one workspace in a partition (the
-- webhook was disabled or deleted: the integration stops), as the caller read
-- them from the indexes and queues.
-- KEYS[1] due index, KEYS[2] ready index, then two per window (it and its list
-- of messages), then per chat its queue, its state and two per bundle (it and
-- its list of messages; its state twice for a message of granularity none,
-- which has neither: see append.lua), then the partition's
-- buffered index (first offsets, for the offset commit) and last the waiting
-- hash. ARGV[1] how many windows, then their members, then per chat its ref and
-- how many bundles, then their members.
-- Returns {windows dropped, bundles dropped}, or {-1, -1} without a change when a
-- queue no longer holds what the caller read (a seal or an ack ran between): the
-- caller reads again. A bundle being delivered right now is dropped too; its ack
-- then finds another head and changes nothing.
-- The last key is the waiting hash (waiting.prelude.lua).
local nw = tonumber(ARGV[1])
local buffered = KEYS[#KEYS - 1]
local chats = {}
local a, k = 2 + nw, 3 + 2 * nw
while a <= #ARGV do
  local nb = tonumber(ARGV[a + 1])
  chats[#chats + 1] = {chat = ARGV[a], q = KEYS[k], c = KEYS[k + 1], args = a + 2, keys = k + 2, n = nb}
  a, k = a + 2 + nb, k + 2 + 2 * nb
end
for _, c in ipairs(chats) do
  local q = redis.call('LRANGE', c.q, 0, -1)
  if #q ~= c.n then return {-1, -1} end
  for i = 1, c.n do
    if q[i] ~= ARGV[c.args + i - 1] then return {-1, -1} end
  end
end
local windows, bundles = 0, 0
for i = 1, nw do
  if redis.call('ZREM', KEYS[1], ARGV[1 + i]) == 1 then
    redis.call('DEL', KEYS[1 + 2 * i], KEYS[2 + 2 * i])
    waiting('w', ARGV[1 + i], -1)
    redis.call('ZREM', buffered, ARGV[1 + i])
    windows = windows + 1
  end
end
for _, c in ipairs(chats) do
  for i = 1, c.n do
    local member = ARGV[c.args + i - 1]
    if string.byte(member) ~= 0 then
      redis.call('DEL', KEYS[c.keys + 2 * i - 2], KEYS[c.keys + 2 * i - 1])
      redis.call('ZREM', buffered, member)
    end
  end
  redis.call('ZREM', buffered, c.chat)
  redis.call('HDEL', c.c, 'na', 'nd')
  bundles = bundles + c.n
  waiting('b', c.chat, -c.n)
  redis.call('DEL', c.q)
  redis.call('ZREM', KEYS[2], c.chat)
end
return {windows, bundles}

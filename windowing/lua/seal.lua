-- Seals the due windows of a partition whose flush time is at or before ARGV[2].
-- KEYS[1] due index, KEYS[2] ready index; ARGV[1] key prefix, ARGV[2] max flush
-- time (ms), ARGV[3] now (ms), ARGV[4] limit.
-- Removing the window from the due index is the claim: whoever removes it seals it,
-- so two flushers (or a zombie) can never seal one window twice. The window's hash
-- becomes an immutable bundle queued behind the chat's earlier bundles, and the
-- chat's sealed mark routes any later message of that period to the open window.
local function split(s)
  local t, i = {}, 1
  while true do
    local j = string.find(s, '\31', i, true)
    if not j then t[#t + 1] = string.sub(s, i); return t end
    t[#t + 1] = string.sub(s, i, j - 1)
    i = j + 1
  end
end
local P = ARGV[1]
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))
local n = 0
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local w = P .. 'w:' .. member
  if redis.call('EXISTS', w) == 1 then
    local p = split(member)
    local chat = p[1] .. '\31' .. p[2]
    redis.call('RENAME', w, P .. 'b:' .. member)
    redis.call('RPUSH', P .. 'q:' .. chat, member)
    local c = P .. 'c:' .. chat
    if tonumber(p[5]) > tonumber(redis.call('HGET', c, 'sealed') or '0') then
      redis.call('HSET', c, 'sealed', p[5])
    end
    redis.call('ZADD', KEYS[2], 'NX', ARGV[3], chat)
    n = n + 1
  end
end
return n

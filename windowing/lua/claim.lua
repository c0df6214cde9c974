-- Claims up to ARGV[4] chats whose next delivery is due, each with a lease.
-- KEYS[1] ready index; ARGV[1] key prefix, ARGV[2] now (ms), ARGV[3] lease end (ms).
-- The lease is the chat's score in the ready index: while it lies in the future no
-- other flusher sees the chat, and if the claimer dies the chat simply becomes due
-- again when the lease runs out. Only the head of a chat's queue is handed out,
-- which keeps deliveries in order within a chat.
local P = ARGV[1]
local chats = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, chat in ipairs(chats) do
  local member = redis.call('LINDEX', P .. 'q:' .. chat, 0)
  if not member then
    redis.call('ZREM', KEYS[1], chat)
  else
    redis.call('ZADD', KEYS[1], ARGV[3], chat)
    local b = P .. 'b:' .. member
    redis.call('HINCRBY', b, '\0a', 1)
    out[#out + 1] = {chat, member, redis.call('HGETALL', b)}
  end
end
return out

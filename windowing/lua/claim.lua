-- Claims up to ARGV[4] chats whose next delivery is due, each with a lease.
-- KEYS[1] ready index; ARGV[1] key prefix, ARGV[2] now (ms), ARGV[3] lease end
-- (ms), ARGV[5] most chats per workspace (0: no cap), ARGV[6] how many due chats
-- to look at, then pairs of workspace and the claims it may still take.
-- The lease is the chat's score in the ready index: while it lies in the future no
-- other flusher sees the chat, and if the claimer dies the chat simply becomes due
-- again when the lease runs out. Only the head of a chat's queue is handed out,
-- which keeps deliveries in order within a chat. A chat over its workspace's cap
-- is left due, unleased, for the next claim.
local P, limit, cap = ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5])
local left = {}
for i = 7, #ARGV, 2 do left[ARGV[i]] = tonumber(ARGV[i + 1]) end
local chats = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[6]))
local out = {}
for _, chat in ipairs(chats) do
  if #out >= limit then break end
  local ws = string.sub(chat, 1, (string.find(chat, '\31', 1, true) or 0) - 1)
  local n = left[ws] or cap
  if cap == 0 or n > 0 then
    local member = redis.call('LINDEX', P .. 'q:' .. chat, 0)
    if not member then
      redis.call('ZREM', KEYS[1], chat)
    else
      left[ws] = n - 1
      redis.call('ZADD', KEYS[1], ARGV[3], chat)
      local b = P .. 'b:' .. member
      redis.call('HINCRBY', b, '\0a', 1)
      out[#out + 1] = {chat, member, redis.call('HGETALL', b)}
    end
  end
end
return out

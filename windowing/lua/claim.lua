-- Claims chats whose next delivery is due, each with a lease, out of those the
-- caller read from the ready index.
-- KEYS[1] ready index, then three per chat: its queue, the bundle of the head
-- the caller read and the bundle's list of messages, or the chat's state twice
-- when it read no head. ARGV[1] now (ms),
-- ARGV[2] lease end (ms), ARGV[3] most chats to claim, ARGV[4] most chats per
-- workspace (0: no cap), ARGV[5] n, then n pairs of chat ref and the head read
-- ('' for none), then pairs of workspace and the claims it may still take.
-- A head that is a message of granularity none (see append.lua) needs only the
-- chat's state, so the caller need not read it first: a claim of such chats is
-- one script after the read of the ready index. A head that is a bundle needs
-- its key: where the caller read no head, the script returns {chat, member}
-- without claiming it, and the caller claims it again naming the bundle.
-- The lease is the chat's score in the ready index: while it lies in the future no
-- other flusher claims the chat, and if the claimer dies the chat simply becomes due
-- again when the lease runs out. Only the head of a chat's queue is handed out,
-- which keeps deliveries in order within a chat. A chat leased, or whose head
-- moved, since the caller's read is left alone, and so is a chat over its
-- workspace's cap: the next claim sees them again.
local now, limit, cap, n = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local left = {}
for i = 6 + 2 * n, #ARGV, 2 do left[ARGV[i]] = tonumber(ARGV[i + 1]) end
local out, taken = {}, 0
for j = 0, n - 1 do
  if taken >= limit then break end
  local chat, head = ARGV[6 + 2 * j], ARGV[7 + 2 * j]
  local q, b, list = KEYS[2 + 3 * j], KEYS[3 + 3 * j], KEYS[4 + 3 * j]
  local score = redis.call('ZSCORE', KEYS[1], chat)
  if score and tonumber(score) <= now then
    local ws = string.sub(chat, 1, (string.find(chat, '\31', 1, true) or 0) - 1)
    local m = left[ws] or cap
    if cap == 0 or m > 0 then
      local member = redis.call('LINDEX', q, 0)
      local inline = member and string.byte(member) == 0
      if not member then
        redis.call('ZREM', KEYS[1], chat)
      elseif head == '' and not inline then
        out[#out + 1] = {chat, member}
      elseif head == '' or member == head then
        left[ws] = m - 1
        taken = taken + 1
        redis.call('ZADD', KEYS[1], ARGV[2], chat)
        if inline then
          -- the head's attempts and the chat's details, named as a bundle's
          local f = {'\0a', tostring(redis.call('HINCRBY', b, 'na', 1))}
          local d = redis.call('HGET', b, 'nd')
          if d then f[3], f[4] = '\0d', d end
          out[#out + 1] = {chat, member, f}
        else
          redis.call('HINCRBY', b, '\0a', 1)
          out[#out + 1] = {chat, member, redis.call('HGETALL', b), redis.call('LRANGE', list, 0, -1)}
        end
      end
    end
  end
end
return out

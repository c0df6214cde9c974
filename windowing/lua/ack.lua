-- Finishes the head of a chat's queue (delivered, or dropped on purpose).
-- KEYS[1] ready index, KEYS[2] the chat's queue, KEYS[3] the chat's state,
-- KEYS[4] the partition's buffered index (first offsets, for the offset commit),
-- then the head's bundle and its list of messages unless the head is a message
-- of granularity none (see append.lua); ARGV[1] chat ref, ARGV[2] the head,
-- ARGV[3] now (ms). A stale ack (the head is another: another worker took over
-- after a lease ran out and finished it) changes nothing.
-- The chat's entry in the buffered index follows its first message of
-- granularity none while those lead its queue. Behind a sealed bundle it keeps
-- the offset it had, lower than it needs: an offset commit held back a little
-- is safe, as a replay below the watermark changes nothing.
-- The last key is the waiting hash (waiting.prelude.lua).
local chat, q = ARGV[1], KEYS[2]
if redis.call('LINDEX', q, 0) ~= ARGV[2] then return 0 end
redis.call('LPOP', q)
waiting('b', chat, -1)
if string.byte(ARGV[2]) == 0 then
  redis.call('HDEL', KEYS[3], 'na')
else
  redis.call('DEL', KEYS[5], KEYS[6])
  redis.call('ZREM', KEYS[4], ARGV[2])
end
local head = redis.call('LINDEX', q, 0)
if not head then
  redis.call('ZREM', KEYS[1], chat)
  redis.call('ZREM', KEYS[4], chat)
  -- nothing queued needs the chat's details any more
  redis.call('HDEL', KEYS[3], 'nd')
  return 1
end
redis.call('ZADD', KEYS[1], ARGV[3], chat)
if string.byte(head) == 0 then
  redis.call('ZADD', KEYS[4], string.sub(head, 2, string.find(head, '\31', 2, true) - 1), chat)
end
return 1

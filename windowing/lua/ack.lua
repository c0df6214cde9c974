-- Finishes the head bundle of a chat (delivered, or dropped on purpose).
-- KEYS[1] ready index, KEYS[2] the chat's queue, KEYS[3] the bundle, KEYS[4] the
-- partition's buffered index (first offsets, for the offset commit); ARGV[1]
-- chat ref, ARGV[2] bundle member, ARGV[3] now (ms). A stale ack (the bundle is
-- no longer the head: another worker took over after a lease ran out and
-- finished it) changes nothing.
-- The last key is the waiting hash (waiting.prelude.lua).
if redis.call('LINDEX', KEYS[2], 0) ~= ARGV[2] then return 0 end
redis.call('LPOP', KEYS[2])
waiting('b', ARGV[1], -1)
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[2])
if redis.call('LLEN', KEYS[2]) > 0 then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 1

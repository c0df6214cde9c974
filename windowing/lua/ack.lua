-- Finishes the head bundle of a chat (delivered, or dropped on purpose).
-- KEYS[1] ready index; ARGV[1] key prefix, ARGV[2] chat ref, ARGV[3] bundle member,
-- ARGV[4] now (ms). A stale ack (the bundle is no longer the head: another worker
-- took over after a lease ran out and finished it) changes nothing.
local q = ARGV[1] .. 'q:' .. ARGV[2]
if redis.call('LINDEX', q, 0) ~= ARGV[3] then return 0 end
redis.call('LPOP', q)
redis.call('DEL', ARGV[1] .. 'b:' .. ARGV[3])
if redis.call('LLEN', q) > 0 then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2])
else
  redis.call('ZREM', KEYS[1], ARGV[2])
end
return 1

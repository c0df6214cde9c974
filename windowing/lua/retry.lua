-- Puts a chat's head back for another attempt at ARGV[3] (ms), releasing the
-- lease early. KEYS[1] ready index, KEYS[2] the chat's queue, KEYS[3] the head's
-- bundle (its chat's state for a message of granularity none, which is never
-- sent in parts); ARGV[1] chat ref, ARGV[2] the head, ARGV[4] its progress
-- ("<next part> <messages sent>").
if redis.call('LINDEX', KEYS[2], 0) ~= ARGV[2] then return 0 end
if ARGV[4] ~= '0 0' and string.byte(ARGV[2]) ~= 0 then redis.call('HSET', KEYS[3], '\0p', ARGV[4]) end
redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
return 1

-- Puts a chat's head bundle back for another attempt at ARGV[4] (ms), releasing
-- the lease early. KEYS[1] ready index; ARGV[1] key prefix, ARGV[2] chat ref,
-- ARGV[3] bundle member, ARGV[5] its progress ("<next part> <messages sent>").
if redis.call('LINDEX', ARGV[1] .. 'q:' .. ARGV[2], 0) ~= ARGV[3] then return 0 end
if ARGV[5] ~= '0 0' then redis.call('HSET', ARGV[1] .. 'b:' .. ARGV[3], '\0p', ARGV[5]) end
redis.call('ZADD', KEYS[1], 'XX', ARGV[4], ARGV[2])
return 1

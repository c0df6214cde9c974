-- Turns a notification claim into "sent" if this caller still holds it.
-- KEYS[1] the claim; ARGV[1] the caller's claim token, ARGV[2] TTL (ms).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'sent', 'PX', ARGV[2])
  return 1
end
return 0

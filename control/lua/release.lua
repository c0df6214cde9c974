-- Drops a notification claim if this caller still holds it.
-- KEYS[1] the claim; ARGV[1] the caller's claim token.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0

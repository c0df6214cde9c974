-- Records the outcome of one attempt.
-- KEYS[1] health hash; ARGV[1] 1 success / 0 failure, ARGV[2] consecutive
-- failures that are still tolerated (10), ARGV[3] 1 to disable at once (410
-- Gone), ARGV[4] TTL of the hash (s), ARGV[5] a probe lease (ms) that holds
-- other attempts until the caller has stored the backoff, ARGV[6] the failure's
-- reason, ARGV[7] end of the alert claim (ms).
-- Returns {consecutive errors, 1 if this call disabled the webhook}. The counter
-- is shared by all workers, and only the call that crosses the threshold gets
-- the 1: exactly one auto-disable, however many workers fail at once.
-- That call also holds the alert claim until ARGV[7]: 'alert' is 0 once the
-- webhook.auto_disabled event is confirmed published, else the end of the
-- current claim. A claimer that dies before publishing lets its claim run out,
-- and the gate hands the alert to the next delivery that meets the webhook.
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'errors', 0, 'next', 0, 'probe', 0)
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  return {0, 0}
end
local errors = redis.call('HINCRBY', KEYS[1], 'errors', 1)
redis.call('HSET', KEYS[1], 'probe', ARGV[5], 'last_error', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if (errors > tonumber(ARGV[2]) or ARGV[3] == '1') and redis.call('HGET', KEYS[1], 'disabled') ~= '1' then
  redis.call('HSET', KEYS[1], 'disabled', 1, 'alert', ARGV[7])
  return {errors, 1}
end
return {errors, 0}

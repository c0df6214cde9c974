-- Records a failed attempt (a success resets the hash with plain commands).
-- KEYS[1] health hash; ARGV[1] consecutive failures that are still tolerated
-- (10), ARGV[2] 1 to disable at once (410 Gone), ARGV[3] TTL of the hash (s),
-- ARGV[4] a probe lease (ms) that holds other attempts until the caller has
-- stored the backoff, ARGV[5] the failure's reason, ARGV[6] end of the alert
-- claim (ms).
-- Returns {consecutive errors, 1 if this call disabled the webhook}. The counter
-- is shared by all workers, and only the call that crosses the threshold gets
-- the 1: exactly one auto-disable, however many workers fail at once.
-- That call also holds the alert claim until ARGV[6]: 'alert' is 0 once the
-- webhook.auto_disabled event is confirmed published, else the end of the
-- current claim. A claimer that dies before publishing lets its claim run out,
-- and the gate hands the alert to the next delivery that meets the webhook.
local errors = redis.call('HINCRBY', KEYS[1], 'errors', 1)
redis.call('HSET', KEYS[1], 'probe', ARGV[4], 'last_error', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if (errors > tonumber(ARGV[1]) or ARGV[2] == '1') and redis.call('HGET', KEYS[1], 'disabled') ~= '1' then
  redis.call('HSET', KEYS[1], 'disabled', 1, 'alert', ARGV[6])
  return {errors, 1}
end
return {errors, 0}

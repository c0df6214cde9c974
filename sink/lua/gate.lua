-- Decides whether a delivery to a webhook may be attempted now.
-- KEYS[1] the webhook's health hash (one per epoch); ARGV[1] now (ms), ARGV[2]
-- end of a probe lease (ms), ARGV[3] longest wait behind a running probe (ms),
-- ARGV[4] end of an alert claim taken now (ms).
-- Returns {verdict, until}: 1 go, 0 wait until `until`, -1 disabled (until = 1
-- when this call claimed the unpublished auto-disable event: the caller
-- publishes it; see failure.lua for the claim).
-- A healthy webhook takes concurrent deliveries. Once it fails, the whole webhook
-- is in backoff: one probe at a time, after the backoff, across all workers. So
-- every attempt counts toward the consecutive-error rule, and a failing receiver
-- sees exactly one attempt per backoff step.
local h = redis.call('HMGET', KEYS[1], 'errors', 'next', 'probe', 'disabled', 'alert')
local now = tonumber(ARGV[1])
if h[4] == '1' then
  local alert = tonumber(h[5] or '0')
  if alert ~= 0 and now >= alert then
    redis.call('HSET', KEYS[1], 'alert', ARGV[4])
    return {-1, 1}
  end
  return {-1, 0}
end
if tonumber(h[1] or '0') == 0 then return {1, 0} end
local nxt = tonumber(h[2] or '0')
if now < nxt then return {0, nxt} end
local probe = tonumber(h[3] or '0')
if now < probe then return {0, math.min(probe, now + tonumber(ARGV[3]))} end
redis.call('HSET', KEYS[1], 'probe', ARGV[2])
return {1, 0}

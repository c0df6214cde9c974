-- Adds an entry to a log list, newest first, and keeps the list bounded.
-- KEYS[1] the list, KEYS[2] the total bytes of its entries (kept only with a
-- byte cap); ARGV[1] the entry, ARGV[2] most entries kept, ARGV[3] most bytes
-- kept (0: no byte cap), ARGV[4] TTL of both keys (s).
-- The oldest entries go until both bounds hold, but the newest always stays.
-- The total is kept beside the list so that no push reads the whole list; it
-- starts again from the entry when the list was empty (expired, or never
-- written), so it cannot drift from a list that went away without it.
local n = redis.call('LPUSH', KEYS[1], ARGV[1])
local size, cap = tonumber(ARGV[2]), tonumber(ARGV[3])
local total = 0
if cap > 0 then
  if n == 1 then
    total = #ARGV[1]
    redis.call('SET', KEYS[2], total)
  else
    total = redis.call('INCRBY', KEYS[2], #ARGV[1])
  end
end
while n > 1 and (n > size or total > cap) do
  local old = redis.call('RPOP', KEYS[1])
  if cap > 0 then
    total = redis.call('INCRBY', KEYS[2], -#old)
  end
  n = n - 1
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
if cap > 0 then
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return n

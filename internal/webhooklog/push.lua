-- Adds one entry to each of a workspace's log lists, newest first, and keeps
-- every list bounded.
-- KEYS two per list: the list, and the total bytes of its entries (kept only
-- with a byte cap); ARGV[1] TTL of every key (s), then three per list: the
-- entry, most entries kept, most bytes kept (0: no byte cap).
-- The oldest entries go until both bounds hold, but the newest always stays.
-- The total is kept beside the list so that no push reads the whole list; it
-- starts again from the entry when the list was empty (expired, or never
-- written), so it cannot drift from a list that went away without it. A list
-- without a byte cap is cut by one LTRIM; one with a cap writes its new total
-- once, however many entries went.
local ttl = ARGV[1]
for i = 0, #KEYS / 2 - 1 do
  local list, bytes = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  local entry, size, cap = ARGV[2 + 3 * i], tonumber(ARGV[3 + 3 * i]), tonumber(ARGV[4 + 3 * i])
  local n = redis.call('LPUSH', list, entry)
  if cap == 0 then
    if n > size then redis.call('LTRIM', list, 0, size - 1) end
  else
    local total = #entry
    if n > 1 then total = total + tonumber(redis.call('GET', bytes) or '0') end
    while n > 1 and (n > size or total > cap) do
      total = total - #redis.call('RPOP', list)
      n = n - 1
    end
    redis.call('SET', bytes, total, 'EX', ttl)
  end
  redis.call('EXPIRE', list, ttl)
end
return 1

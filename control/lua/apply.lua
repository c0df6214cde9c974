-- Writes the effect of one control record. Many workers apply the same records;
-- the offset guard makes every write after the first a no-op, and makes a
-- lagging worker unable to overwrite a newer state with an older one.
-- KEYS[1] webhooks hash, KEYS[2] offsets hash; ARGV[1] partition, ARGV[2]
-- offset, ARGV[3] op ("set", "del" or "none"), ARGV[4] workspace, ARGV[5]
-- webhook JSON.
-- Returns 1 when applied, 0 when the offset was already applied.
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur and tonumber(ARGV[2]) <= tonumber(cur) then
  return 0
end
if ARGV[3] == 'set' then
  redis.call('HSET', KEYS[1], ARGV[4], ARGV[5])
elseif ARGV[3] == 'del' then
  redis.call('HDEL', KEYS[1], ARGV[4])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1

-- Prepended to the scripts that open or seal windows and queue or remove
-- bundles. The partition's waiting hash, the script's last key, counts per
-- workspace its open windows ('w' .. workspace) and queued bundles ('b' ..
-- workspace), so that a workspace's count is one field per partition, never a
-- scan. A count that would fall to 0 or below goes: one that started after
-- bundles were already queued (an upgrade) is low until they drain, never
-- negative. A change of 0 is skipped: Lua formats -0 as "-0", which HINCRBY
-- refuses as not an integer.
local function waiting(kind, chat, by)
  if by == 0 then return end
  local f = kind .. string.sub(chat, 1, string.find(chat, '\31', 1, true) - 1)
  if redis.call('HINCRBY', KEYS[#KEYS], f, by) <= 0 then
    redis.call('HDEL', KEYS[#KEYS], f)
  end
end

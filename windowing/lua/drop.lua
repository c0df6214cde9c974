-- Drops every pending window and bundle of one workspace in a partition (the
-- webhook was disabled or deleted: the integration stops).
-- KEYS[1] due index, KEYS[2] ready index; ARGV[1] key prefix, ARGV[2] workspace.
-- Returns {windows dropped, bundles dropped}. A bundle being delivered right now
-- is dropped too; its ack then finds another head and changes nothing.
local P, head = ARGV[1], ARGV[2] .. '\31'
local function mine(s) return string.sub(s, 1, #head) == head end
local windows, bundles = 0, 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if mine(member) then
    redis.call('DEL', P .. 'w:' .. member)
    redis.call('ZREM', KEYS[1], member)
    windows = windows + 1
  end
end
for _, chat in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if mine(chat) then
    local q = P .. 'q:' .. chat
    for _, member in ipairs(redis.call('LRANGE', q, 0, -1)) do
      redis.call('DEL', P .. 'b:' .. member)
      bundles = bundles + 1
    end
    redis.call('DEL', q)
    redis.call('ZREM', KEYS[2], chat)
  end
end
return {windows, bundles}

-- Seals due windows that the caller read from the due index.
-- KEYS[1] due index, KEYS[2] ready index, KEYS[3] the partition's watermark, then
-- four per window: the window, its bundle, its chat's queue, its chat's state;
-- ARGV[1] now (ms), ARGV[2] the watermark the caller applied, then three per
-- window: its member, its chat ref, its end (ms).
-- A chat becomes ready at its window's flush time (or now, if earlier): chats
-- sealed together are then claimed in the order of their flush times, whose
-- stagger mixes workspaces, rather than by name, which groups them by
-- workspace and leaves a claim with the chats of workspaces at their cap.
-- A watermark below the caller's means that Redis lost writes: sealing now would
-- close windows before the replay from Kafka refills them, so nothing is sealed
-- and the script returns -1.
-- Removing the window from the due index is the claim: whoever removes it seals it,
-- so two flushers (or a zombie) can never seal one window twice. The window's hash
-- becomes an immutable bundle queued behind the chat's earlier bundles (its list
-- of messages keeps its name: see append.lua), and the
-- chat's sealed mark routes any later message of that period to the open window.
-- The last key is the waiting hash (waiting.prelude.lua).
if tonumber(redis.call('GET', KEYS[3]) or '-1') < tonumber(ARGV[2]) then return -1 end
local n = 0
for j = 0, (#ARGV - 2) / 3 - 1 do
  local member, chat, wend = ARGV[3 + 3 * j], ARGV[4 + 3 * j], ARGV[5 + 3 * j]
  local w, b, q, c = KEYS[4 + 4 * j], KEYS[5 + 4 * j], KEYS[6 + 4 * j], KEYS[7 + 4 * j]
  local due = tonumber(redis.call('ZSCORE', KEYS[1], member))
  local removed = redis.call('ZREM', KEYS[1], member) == 1
  if removed then waiting('w', chat, -1) end
  if removed and redis.call('EXISTS', w) == 1 then
    redis.call('RENAME', w, b)
    redis.call('RPUSH', q, member)
    waiting('b', chat, 1)
    if tonumber(wend) > tonumber(redis.call('HGET', c, 'sealed') or '0') then
      redis.call('HSET', c, 'sealed', wend)
    end
    redis.call('ZADD', KEYS[2], 'NX', math.min(due, tonumber(ARGV[1])), chat)
    n = n + 1
  end
end
return n

--[[
  The users of a shard with a session past its deadline (at most `limit` sessions looked at);
  drops deadlines of sessions that no longer exist.

  KEYS[1] shard expiries    zset sid -> deadline
  ARGV[1] JSON { base, now, limit }

  Reply (JSON): { "users": [user id, ...] }
]]

local a = cjson.decode(ARGV[1])
local found, users = {}, {}
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', a.now, 'LIMIT', 0, a.limit)) do
  local user = redis.call('HGET', a.base .. 'session:' .. sid, 'user')
  if not user then
    redis.call('ZREM', KEYS[1], sid)
  elseif not found[user] then
    found[user] = true
    table.insert(users, user)
  end
end
return cjson.encode({ users = users })

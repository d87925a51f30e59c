--[[
  Takes or renews the lease of one outbox shard: one relaying owner per shard keeps each
  user's events in order.

  KEYS[1] the shard's lease    string: the owner's id, expiring after ttl_ms
  ARGV[1] JSON { owner, ttl_ms }

  Reply (JSON): { "result": "renewed" | "acquired" | "lost" }
]]

local a = cjson.decode(ARGV[1])
if redis.call('GET', KEYS[1]) == a.owner then
  redis.call('PEXPIRE', KEYS[1], a.ttl_ms)
  return cjson.encode({ result = 'renewed' })
end
if redis.call('SET', KEYS[1], a.owner, 'NX', 'PX', a.ttl_ms) then
  return cjson.encode({ result = 'acquired' })
end
return cjson.encode({ result = 'lost' })

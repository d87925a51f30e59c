--[[
  Gives up a shard's lease, if this owner holds it, so another instance takes it at once.

  KEYS[1] the shard's lease
  ARGV[1] JSON { owner }

  Reply (JSON): { "released": true | false }
]]

local a = cjson.decode(ARGV[1])
if redis.call('GET', KEYS[1]) == a.owner then
  redis.call('DEL', KEYS[1])
  return cjson.encode({ released = true })
end
return cjson.encode({ released = false })

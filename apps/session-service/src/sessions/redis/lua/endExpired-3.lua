--[[
  Ends every session of one user whose idle or absolute deadline has passed.

  KEYS[1] user's session index    zset
  KEYS[2] shard expiries          zset
  KEYS[3] shard outbox            stream
  ARGV[1] JSON { base, issuer, nonce, now, user }

  Reply (JSON, with "events": how many it appended): { "ended": <number> }
]]
--- @include "includes/revocation"

local a = cjson.decode(ARGV[1])
check_event_input(a)
local ctx = { base = a.base, outbox = KEYS[3], expiries = KEYS[2], issuer = a.issuer,
  nonce = a.nonce, now = a.now }
return reply(ctx, { ended = end_expired(ctx, a.user) })

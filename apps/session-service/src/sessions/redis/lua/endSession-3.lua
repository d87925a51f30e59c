--[[
  Ends one session, with its revocation event, if it exists and (when `owner` is given)
  belongs to that user.

  KEYS[1] the session        hash
  KEYS[2] shard expiries     zset
  KEYS[3] shard outbox       stream
  ARGV[1] JSON { base, issuer, nonce, now, sid, entity, reason, owner? }

  Reply (JSON, with "events": how many it appended): { "user": <user id> | false }
]]
--- @include "includes/revocation"

local a = cjson.decode(ARGV[1])
check_event_input(a)
local ctx = { base = a.base, outbox = KEYS[3], expiries = KEYS[2], issuer = a.issuer,
  nonce = a.nonce, now = a.now }
if a.owner and redis.call('HGET', KEYS[1], 'user') ~= a.owner then
  return reply(ctx, { user = false })
end
return reply(ctx, { user = end_session(ctx, a.sid, a.entity, a.reason) or false })

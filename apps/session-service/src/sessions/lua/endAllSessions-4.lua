--[[
  "Log out everywhere": ends every session of the user and appends ONE user-wide revocation
  (a subject without a session); records its instant so tokens of later sessions get an
  `iat` strictly after it.

  KEYS[1] user's session index    zset
  KEYS[2] user's revoked_before   ms
  KEYS[3] shard expiries          zset
  KEYS[4] shard outbox            stream
  ARGV[1] JSON { base, issuer, nonce, now, user, entity, reason }

  Reply (JSON): { "ended": <number of sessions ended> }
]]
--- @include "includes/revocation"

local a = cjson.decode(ARGV[1])
local ctx = { base = a.base, outbox = KEYS[4], expiries = KEYS[3], issuer = a.issuer,
  nonce = a.nonce, now = a.now }
local sids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, sid in ipairs(sids) do
  redis.call('DEL', a.base .. 'session:' .. sid)
  redis.call('ZREM', KEYS[3], sid)
end
redis.call('DEL', KEYS[1])
-- Sessions created since the previous "log out everywhere" got iat >= its second + 1, which may
-- still be ahead of now: this one is stamped no earlier than that second, so it covers them
-- (consumers revoke iat * 1000 <= T). At most one second ahead, like those iats.
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local at = math.max(a.now, (math.floor(previous / 1000) + 1) * 1000)
redis.call('SET', KEYS[2], at)
append_revocation(ctx, a.nonce .. ':' .. a.user, at, a.user, nil, a.entity, a.reason)
return cjson.encode({ ended = #sids })

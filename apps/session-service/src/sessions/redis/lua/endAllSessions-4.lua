--[[
  "Log out everywhere": ends every session of the user and appends ONE user-wide revocation
  (a subject without a session) at `now`, which rejects every token with iat * 1000 <= now.
  A live session whose latest token is stamped later than that (created in this same second
  after an earlier "log out everywhere", so its iat is the next second) gets an event of its
  own as well. The instant is recorded for the retention time, so tokens of later sessions get
  an `iat` strictly after it. Nothing is ever stamped ahead of the clock, however often this runs.

  KEYS[1] user's session index    zset
  KEYS[2] user's revoked_before   ms
  KEYS[3] shard expiries          zset
  KEYS[4] shard outbox            stream
  ARGV[1] JSON { base, issuer, nonce, now, user, entity, reason, retention_ms }

  Reply (JSON, with "events": how many it appended): { "ended": <number of sessions ended> }
]]
--- @include "includes/revocation"

local a = cjson.decode(ARGV[1])
check_event_input(a)
local ctx = { base = a.base, outbox = KEYS[4], expiries = KEYS[3], issuer = a.issuer,
  nonce = a.nonce, now = a.now }
local sids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, sid in ipairs(sids) do
  local key = a.base .. 'session:' .. sid
  local iat = tonumber(redis.call('HGET', key, 'iat') or '0')
  if iat * 1000 > a.now then
    append_revocation(ctx, a.now, a.user, sid, a.entity, a.reason)
  end
  delete_session(ctx, key)
  redis.call('ZREM', KEYS[3], sid)
end
redis.call('DEL', KEYS[1])
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
redis.call('SET', KEYS[2], math.max(previous, a.now), 'PX', a.retention_ms)
append_revocation(ctx, a.now, a.user, nil, a.entity, a.reason)
return reply(ctx, { ended = #sids })

--[[
  OpenID Connect Back-Channel Logout: ends the user's sessions that came from one provider
  session (`idp_sid`, and the `idp_sub` too when given), or with `idp_sub` only every session of
  the user from that issuer, each with its own revocation event.
  With `idp_sid`, also records that the provider session ended (KEYS[4], for `marker_ms`): a
  sign-in with an ID token of that provider session racing this logout opens no session
  (createSession checks it in this same hash slot).

  KEYS[1] user's session index    zset
  KEYS[2] shard expiries          zset
  KEYS[3] shard outbox            stream
  KEYS[4] the provider session's end  string (see createSession's KEYS[9])
  ARGV[1] JSON { base, issuer, nonce, now, user, idp_iss, idp_sid?, idp_sub?, entity, reason,
                 marker_ms }

  A session matches when its stored idp_iss is idp_iss and, when given, its idp_sid is idp_sid
  and its idp_sub is idp_sub. With `idp_sub` only, a session with no stored provider fields
  matches too: the user id is derived from the issuer and `sub` (oidc-<hash>), so every session
  of the user came from that issuer, also those signed in before the fields were stored.

  Reply (JSON, with "events": how many it appended): { "ended": <number of sessions ended> }
]]
--- @include "includes/revocation"

local a = cjson.decode(ARGV[1])
check_event_input(a)
local ctx = { base = a.base, outbox = KEYS[3], expiries = KEYS[2], issuer = a.issuer,
  nonce = a.nonce, now = a.now }
local ended = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local s = redis.call('HMGET', a.base .. 'session:' .. sid, 'idp_iss', 'idp_sid', 'idp_sub')
  local match
  if a.idp_sid then
    match = s[1] == a.idp_iss and s[2] == a.idp_sid
  else
    match = (not s[1]) or s[1] == a.idp_iss
  end
  if match and a.idp_sub and s[3] and s[3] ~= a.idp_sub then match = false end
  if match then
    if end_session(ctx, sid, a.entity, a.reason) then ended = ended + 1 end
  end
end
if a.idp_sid then redis.call('SET', KEYS[4], '1', 'PX', a.marker_ms) end
return reply(ctx, { ended = ended })

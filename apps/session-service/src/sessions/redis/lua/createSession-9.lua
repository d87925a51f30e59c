--[[
  Creates a session under the user's device limit, in one step: the user's expired sessions
  end first, then the session the sign-in names to replace (`replace`, when it is one of this
  user's: the user chose which device to sign out); at the limit, policy `reject` refuses (and
  lists the live sessions) and `evict_oldest` ends the least recently active ones, each with
  its outbox entry.

  KEYS[1] user's session index    zset sid -> last_active_at
  KEYS[2] user's plan             hash max_devices, policy
  KEYS[3] user's revoked_before   ms of the last "log out everywhere"
  KEYS[4] shard expiries          zset sid -> deadline
  KEYS[5] shard outbox            stream
  KEYS[6] the new session         hash; expires at its absolute deadline. `format`: 'jwt' | 'opaque',
                                  the access-token format its sign-in asked for (its refreshes answer
                                  the same); an opaque session's hash later holds at:<token hash> -> exp
                                  (ms) for each of its opaque tokens (see storeAccessToken)
  KEYS[7] its refresh-token family  hash sid, user, t:<secret hash> -> 'a' (active) | rotated_at;
                                    expires with the session
  KEYS[8] the ID token's use       string, kept until the ID token expires (OIDC sign-in only)
  KEYS[9] the provider session's end  string: the provider's back-channel logout for this `sid`
                                    (written by endProviderSessions); an ID token of it opens nothing
  ARGV[1] JSON { base, issuer, nonce, now, user, sid, family, secret, default_max, default_policy,
                 idle_ms, absolute_at, remember, roles, device_name, device_platform, user_agent, ip,
                 format, id_token_until?, replace?, idp_iss?, idp_sub?, idp_sid? }
          id_token_until: for an OIDC sign-in, when its ID token expires (ms); it opens one session
          idp_iss, idp_sub, idp_sid: for an OIDC sign-in, the provider's session (issuer, the ID
          token's `sub`, its `sid` when given), stored in the session's hash for back-channel logout
          family, secret: SHA-256 of the refresh token's two parts
          format: 'jwt' | 'opaque', the access-token format, stored with the session
          replace: a session id; ended (user, replaced_at_sign_in) if it is a live session of
          this user, ignored otherwise

  Reply (JSON, with "events": how many it appended): { "kind": "created", "iat", "evicted" }   iat: of the session's first token
              | { "kind": "rejected", "sessions": [sid, ...] }
              | { "kind": "replayed" }   the ID token opened a session before
              | { "kind": "provider_ended" }   the provider session (idp_sid) was logged out
]]
--- @include "includes/revocation"

local a = cjson.decode(ARGV[1])
check_event_input(a)
local ctx = { base = a.base, outbox = KEYS[5], expiries = KEYS[4], issuer = a.issuer,
  nonce = a.nonce, now = a.now }
local index = KEYS[1]
-- Run a second time with the same argument (a retried command whose first reply was lost):
-- the session exists; evicting for it again would end an innocent session.
if redis.call('EXISTS', KEYS[6]) == 1 then
  return reply(ctx, { kind = 'created', evicted = 0,
    iat = tonumber(redis.call('HGET', KEYS[6], 'iat')) })
end
if a.id_token_until and redis.call('EXISTS', KEYS[8]) == 1 then
  return reply(ctx, { kind = 'replayed' })
end
if a.idp_sid and redis.call('EXISTS', KEYS[9]) == 1 then
  return reply(ctx, { kind = 'provider_ended' })
end
local plan = redis.call('HMGET', KEYS[2], 'max_devices', 'policy')
local max_devices = tonumber(plan[1] or a.default_max)
local policy = plan[2] or a.default_policy

end_expired(ctx, a.user)
if a.replace and redis.call('ZSCORE', index, a.replace) then
  end_session(ctx, a.replace, 'user', 'replaced_at_sign_in')
end
local live = redis.call('ZCARD', index)
local evicted = 0
if live >= max_devices then
  if policy == 'reject' then
    return reply(ctx, { kind = 'rejected', sessions = redis.call('ZRANGE', index, 0, -1) })
  end
  local oldest = redis.call('ZRANGE', index, 0, live - max_devices)
  for _, sid in ipairs(oldest) do end_session(ctx, sid, 'policy', 'device_limit') end
  evicted = #oldest
end

local iat = token_iat(a.now, redis.call('GET', KEYS[3]))
-- No access token outlives the absolute deadline (its exp is capped there), so nothing about
-- the session matters after it, not even an event for its end.
redis.call('HSET', KEYS[6], 'user', a.user, 'created_at', a.now, 'last_active_at', a.now, 'iat', iat,
  'idle_ms', a.idle_ms, 'absolute_at', a.absolute_at, 'remember', a.remember, 'roles', a.roles,
  'device_name', a.device_name, 'device_platform', a.device_platform,
  'user_agent', a.user_agent, 'ip', a.ip, 'family', a.family, 'format', a.format)
if a.idp_iss then
  redis.call('HSET', KEYS[6], 'idp_iss', a.idp_iss, 'idp_sub', a.idp_sub)
  if a.idp_sid then redis.call('HSET', KEYS[6], 'idp_sid', a.idp_sid) end
end
redis.call('PEXPIREAT', KEYS[6], a.absolute_at)
redis.call('ZADD', index, a.now, a.sid)
expire_not_before(index, a.absolute_at)
redis.call('ZADD', KEYS[4], deadline(a.idle_ms, a.now, a.absolute_at), a.sid)
redis.call('HSET', KEYS[7], 'sid', a.sid, 'user', a.user, 't:' .. a.secret, 'a')
redis.call('PEXPIREAT', KEYS[7], a.absolute_at)
if a.id_token_until then redis.call('SET', KEYS[8], a.sid, 'PXAT', a.id_token_until) end
return reply(ctx, { kind = 'created', iat = iat, evicted = evicted })

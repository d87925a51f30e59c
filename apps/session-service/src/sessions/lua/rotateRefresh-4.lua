--[[
  Rotates a refresh token. An active token becomes `rotated` and a new one is issued. A
  rotated token presented again within the grace window (a client's own race, e.g. two tabs)
  gets a sibling; after the window it is a reuse: the session and its token family end.

  KEYS[1] the presented refresh token   hash sid, user, state (active|rotated), rotated_at
  KEYS[2] shard expiries                zset
  KEYS[3] shard outbox                  stream
  KEYS[4] the new refresh token         hash
  ARGV[1] JSON { base, issuer, nonce, now, grace_ms }
  The session and the user's keys are found from the token (same shard, same hash slot).

  Reply (JSON): { "kind": "rotated", "sid", "user", "roles", "absolute_at", "iat" }
    iat: the new token's, fixed here at the instant of this step and recorded with the session,
    so a "log out everywhere" that runs after this step (before the token is signed) sees it.
              | { "kind": "invalid" } | { "kind": "reused", "sid" }
]]
--- @include "includes/revocation"

local a = cjson.decode(ARGV[1])
local ctx = { base = a.base, outbox = KEYS[3], expiries = KEYS[2], issuer = a.issuer,
  nonce = a.nonce, now = a.now }
local token = redis.call('HMGET', KEYS[1], 'sid', 'user', 'state', 'rotated_at')
local sid, user, state = token[1], token[2], token[3]
if not sid then return cjson.encode({ kind = 'invalid' }) end
local key = a.base .. 'session:' .. sid
local s = redis.call('HMGET', key, 'last_active_at', 'idle_ms', 'absolute_at', 'roles', 'iat')
if not s[1] then return cjson.encode({ kind = 'invalid' }) end
local idle_ms, absolute_at = tonumber(s[2]), tonumber(s[3])
if deadline(idle_ms, tonumber(s[1]), absolute_at) <= a.now then
  end_session(ctx, sid, 'system', 'expired')
  return cjson.encode({ kind = 'invalid' })
end
-- Run a second time with the same argument (a retried command whose first reply was lost),
-- the new token exists already: answer as the first run did, change nothing.
if redis.call('EXISTS', KEYS[4]) == 0 then
  if state == 'rotated' and a.now - tonumber(token[4]) > a.grace_ms then
    end_session(ctx, sid, 'system', 'refresh_token_reuse')
    return cjson.encode({ kind = 'reused', sid = sid })
  end
  if state == 'active' then redis.call('HSET', KEYS[1], 'state', 'rotated', 'rotated_at', a.now) end
  redis.call('HSET', KEYS[4], 'sid', sid, 'user', user, 'state', 'active')
  redis.call('PEXPIREAT', KEYS[4], absolute_at)
  s[5] = token_iat(a.now, redis.call('GET', a.base .. 'user:' .. user .. ':revoked_before'))
  redis.call('HSET', key, 'last_active_at', a.now, 'iat', s[5])
  redis.call('ZADD', user_index(ctx, user), a.now, sid)
  redis.call('ZADD', KEYS[2], deadline(idle_ms, a.now, absolute_at), sid)
end
return cjson.encode({ kind = 'rotated', sid = sid, user = user, roles = s[4],
  absolute_at = absolute_at, iat = tonumber(s[5]) })

--[[
  Rotates a refresh token. A refresh token is `rt<shard>_<family>.<secret>`: the family names
  the session's chain of tokens, the secret one link of it. Presenting an active secret
  rotates it: it is marked rotated and a new one issued. A secret rotated within the grace
  window (a client racing itself, e.g. two tabs) gets a sibling. Any other secret of a known
  family (rotated longer ago, or forgotten since) is a reuse: the session ends with its
  family. Rotated secrets are forgotten once the grace window has passed: the family alone
  tells a reuse, so the key does not grow with refreshes.

  KEYS[1] the token's family     hash sid, user, t:<secret hash> -> 'a' | rotated_at (ms)
  KEYS[2] shard expiries         zset
  KEYS[3] shard outbox           stream
  ARGV[1] JSON { base, issuer, nonce, now, secret, next, grace_ms }
          secret, next: SHA-256 of the presented secret and of the one to issue
  The session and the user's keys are found from the family (same shard, same hash slot).

  Reply (JSON, with "events": how many it appended): { "kind": "rotated", "sid", "user", "roles", "absolute_at", "iat", "format" }
              | { "kind": "invalid" } | { "kind": "reused", "sid" }
    iat: the new token's, fixed here at the instant of this step and recorded with the session,
    so a "log out everywhere" that runs after this step (before the token is signed) sees it.
    format: the session's access-token format ('jwt' | 'opaque', stored at sign-in; 'jwt' for a
    session that has none), so the refresh answers the format the sign-in asked for.
]]
--- @include "includes/revocation"

-- Rotated secrets kept for the grace window, at most this many (the newest).
local MAX_ROTATED = 8

local a = cjson.decode(ARGV[1])
check_event_input(a)
local ctx = { base = a.base, outbox = KEYS[3], expiries = KEYS[2], issuer = a.issuer,
  nonce = a.nonce, now = a.now }
local family = redis.call('HMGET', KEYS[1], 'sid', 'user')
local sid, user = family[1], family[2]
if not sid then return reply(ctx, { kind = 'invalid' }) end
local key = a.base .. 'session:' .. sid
local s = redis.call('HMGET', key, 'last_active_at', 'idle_ms', 'absolute_at', 'roles', 'iat',
  'format')
if not s[1] then
  redis.call('DEL', KEYS[1])
  return reply(ctx, { kind = 'invalid' })
end
local idle_ms, absolute_at = tonumber(s[2]), tonumber(s[3])
if deadline(idle_ms, tonumber(s[1]), absolute_at) <= a.now then
  end_session(ctx, sid, 'system', 'expired')
  return reply(ctx, { kind = 'invalid' })
end
-- Run a second time with the same argument (a retried command whose first reply was lost):
-- the next secret exists already; answer as the first run did, change nothing.
if redis.call('HEXISTS', KEYS[1], 't:' .. a.next) == 0 then
  local state = redis.call('HGET', KEYS[1], 't:' .. a.secret)
  if state == 'a' then
    redis.call('HSET', KEYS[1], 't:' .. a.secret, a.now)
  elseif not (state and a.now - tonumber(state) <= a.grace_ms) then
    end_session(ctx, sid, 'system', 'refresh_token_reuse')
    return reply(ctx, { kind = 'reused', sid = sid })
  end
  -- Forget rotated secrets past the grace window, and beyond the newest few: a client racing
  -- itself presents one of its last tokens, not one from hundreds of rotations ago. The
  -- family stays a handful of fields, so this costs the same after any number of refreshes.
  local fields, rotated = redis.call('HGETALL', KEYS[1]), {}
  for i = 1, #fields, 2 do
    local field, value = fields[i], fields[i + 1]
    if string.sub(field, 1, 2) == 't:' and value ~= 'a' then
      if a.now - tonumber(value) > a.grace_ms then
        redis.call('HDEL', KEYS[1], field)
      else
        table.insert(rotated, { field = field, at = tonumber(value) })
      end
    end
  end
  if #rotated > MAX_ROTATED then
    table.sort(rotated, function(x, y) return x.at > y.at end)
    for i = MAX_ROTATED + 1, #rotated do redis.call('HDEL', KEYS[1], rotated[i].field) end
  end
  redis.call('HSET', KEYS[1], 't:' .. a.next, 'a')
  s[5] = token_iat(a.now, redis.call('GET', a.base .. 'user:' .. user .. ':revoked_before'))
  redis.call('HSET', key, 'last_active_at', a.now, 'iat', s[5])
  redis.call('ZADD', user_index(ctx, user), a.now, sid)
  redis.call('ZADD', KEYS[2], deadline(idle_ms, a.now, absolute_at), sid)
end
return reply(ctx, { kind = 'rotated', sid = sid, user = user, roles = s[4],
  absolute_at = absolute_at, iat = tonumber(s[5]), format = s[6] or 'jwt' })

import { luaScript } from '@app/redis';

// The session service's atomic steps. Each runs as one Lua script on the keys of one user
// (one hash slot): the state change and the outbox entry of every session it ends happen
// together or not at all. Keys under the shard base (ARGV[1]):
//   session:<sid>            hash: user, device…, created_at, last_active_at, idle_ms,
//                            absolute_at, remember, roles
//   user:<uid>:sessions      zset: sid → last_active_at (least recently active first)
//   user:<uid>:plan          hash: max_devices, policy
//   user:<uid>:revoked_before  ms of the last "log out everywhere" (exactness of iat)
//   expiries                 zset: sid → the earlier of its idle and absolute deadline
//   refresh:<sha256>         hash: sid, user, state (active|rotated), rotated_at
// Event JSON follows libs/contracts (a CAEP session-revoked SET); jti = ARGV nonce + ':' + sid.

/** Shared Lua: the revocation event (contract shape), and ending one session with its event. */
const END_SESSION_LUA = `
local function append_revocation(outbox, jti, issuer, now, user, sid, entity, reason)
  local subject = { format = 'complex', user = { format = 'opaque', id = user } }
  if sid then subject.session = { format = 'opaque', id = sid } end
  local event = {
    jti = jti,
    iss = issuer,
    iat = math.floor(now / 1000),
    events = {
      ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'] = {
        subject = subject,
        event_timestamp = now / 1000,
        initiating_entity = entity,
        reason_admin = { en = reason },
      },
    },
  }
  redis.call('XADD', outbox, '*', 'key', user, 'event', cjson.encode(event))
end

local function end_session(base, outbox, sid, now, issuer, nonce, entity, reason)
  local key = base .. 'session:' .. sid
  local user = redis.call('HGET', key, 'user')
  if not user then return nil end
  redis.call('DEL', key)
  redis.call('ZREM', base .. 'user:' .. user .. ':sessions', sid)
  redis.call('ZREM', base .. 'expiries', sid)
  append_revocation(outbox, nonce .. ':' .. sid, issuer, now, user, sid, entity, reason)
  return user
end

-- Ends the sessions of a user whose idle or absolute deadline has passed.
local function end_expired(base, outbox, user, now, issuer, nonce)
  local sids = redis.call('ZRANGE', base .. 'user:' .. user .. ':sessions', 0, -1)
  local ended = 0
  for _, sid in ipairs(sids) do
    local deadline = redis.call('ZSCORE', base .. 'expiries', sid)
    if (not deadline) or tonumber(deadline) <= now then
      if not end_session(base, outbox, sid, now, issuer, nonce, 'system', 'expired') then
        redis.call('ZREM', base .. 'user:' .. user .. ':sessions', sid)
      end
      ended = ended + 1
    end
  end
  return ended
end

local function deadline(idle_ms, last_active, absolute_at)
  return math.min(last_active + idle_ms, absolute_at)
end
`;

/**
 * Creates a session under the user's device limit, all in one step: expired sessions are
 * ended first; at the limit, policy `reject` refuses (returns the live sessions) and
 * `evict_oldest` ends the least recently active ones, each with its outbox entry.
 *
 * ARGV: base, outbox, issuer, nonce, now, user, sid, refresh_hash, default_max, default_policy,
 *       idle_ms, absolute_at, remember, roles_json, device_name, device_platform, user_agent, ip
 * Returns {'created', created_at, revoked_before, evicted} or {'rejected', sid1, sid2, …}.
 */
export const CREATE_SESSION = luaScript(`${END_SESSION_LUA}
local base, outbox, issuer, nonce = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, user, sid, refresh_hash = tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8]
local plan = redis.call('HMGET', base .. 'user:' .. user .. ':plan', 'max_devices', 'policy')
local max_devices = tonumber(plan[1] or ARGV[9])
local policy = plan[2] or ARGV[10]
local idle_ms, absolute_at = tonumber(ARGV[11]), tonumber(ARGV[12])
local index = base .. 'user:' .. user .. ':sessions'

end_expired(base, outbox, user, now, issuer, nonce)
local live = redis.call('ZCARD', index)
local evicted = 0
if live >= max_devices then
  if policy == 'reject' then
    local reply = { 'rejected' }
    for _, s in ipairs(redis.call('ZRANGE', index, 0, -1)) do table.insert(reply, s) end
    return reply
  end
  local oldest = redis.call('ZRANGE', index, 0, live - max_devices)
  for _, s in ipairs(oldest) do end_session(base, outbox, s, now, issuer, nonce, 'policy', 'device_limit') end
  evicted = #oldest
end

local key = base .. 'session:' .. sid
redis.call('HSET', key, 'user', user, 'created_at', now, 'last_active_at', now, 'idle_ms', idle_ms,
  'absolute_at', absolute_at, 'remember', ARGV[13], 'roles', ARGV[14], 'device_name', ARGV[15],
  'device_platform', ARGV[16], 'user_agent', ARGV[17], 'ip', ARGV[18])
redis.call('ZADD', index, now, sid)
redis.call('ZADD', base .. 'expiries', deadline(idle_ms, now, absolute_at), sid)
redis.call('HSET', base .. 'refresh:' .. refresh_hash, 'sid', sid, 'user', user, 'state', 'active')
redis.call('PEXPIREAT', base .. 'refresh:' .. refresh_hash, absolute_at)
return { 'created', now, tonumber(redis.call('GET', base .. 'user:' .. user .. ':revoked_before') or '0'), evicted }
`);

/**
 * Rotates a refresh token. An active token becomes `rotated` and a new one is issued. A
 * rotated token presented again within the grace window (a client's own race, e.g. two tabs)
 * gets a sibling; after the window it is a reuse: the session and its token family end.
 *
 * ARGV: base, outbox, issuer, nonce, now, old_hash, new_hash, grace_ms
 * Returns {'rotated', sid, user, roles_json, absolute_at, revoked_before} | {'invalid'} | {'reused', sid}.
 */
export const ROTATE_REFRESH = luaScript(`${END_SESSION_LUA}
local base, outbox, issuer, nonce = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, old_key, new_hash, grace = tonumber(ARGV[5]), base .. 'refresh:' .. ARGV[6], ARGV[7], tonumber(ARGV[8])
local token = redis.call('HMGET', old_key, 'sid', 'user', 'state', 'rotated_at')
local sid, user, state = token[1], token[2], token[3]
if not sid then return { 'invalid' } end
local key = base .. 'session:' .. sid
local s = redis.call('HMGET', key, 'last_active_at', 'idle_ms', 'absolute_at', 'roles')
if not s[1] then return { 'invalid' } end
local absolute_at = tonumber(s[3])
if deadline(tonumber(s[2]), tonumber(s[1]), absolute_at) <= now then
  end_session(base, outbox, sid, now, issuer, nonce, 'system', 'expired')
  return { 'invalid' }
end
if state == 'rotated' and now - tonumber(token[4]) > grace then
  end_session(base, outbox, sid, now, issuer, nonce, 'system', 'refresh_token_reuse')
  return { 'reused', sid }
end
if state == 'active' then redis.call('HSET', old_key, 'state', 'rotated', 'rotated_at', now) end
local new_key = base .. 'refresh:' .. new_hash
redis.call('HSET', new_key, 'sid', sid, 'user', user, 'state', 'active')
redis.call('PEXPIREAT', new_key, absolute_at)
redis.call('HSET', key, 'last_active_at', now)
redis.call('ZADD', base .. 'user:' .. user .. ':sessions', now, sid)
redis.call('ZADD', base .. 'expiries', deadline(tonumber(s[2]), now, absolute_at), sid)
return { 'rotated', sid, user, s[4], absolute_at, redis.call('GET', base .. 'user:' .. user .. ':revoked_before') or '0' }
`);

/**
 * Ends one session if it exists and (when ARGV[8] is not empty) belongs to that user.
 * ARGV: base, outbox, issuer, nonce, now, sid, entity, owner_or_empty, reason. Returns the user id or false.
 */
export const END_SESSION = luaScript(`${END_SESSION_LUA}
local base, sid, owner = ARGV[1], ARGV[6], ARGV[8]
if owner ~= '' and redis.call('HGET', base .. 'session:' .. sid, 'user') ~= owner then return false end
return end_session(base, ARGV[2], sid, tonumber(ARGV[5]), ARGV[3], ARGV[4], ARGV[7], ARGV[9]) or false
`);

/**
 * "Log out everywhere": ends every session of the user and appends ONE user-wide revocation
 * (a subject without a session) at \`now\`; records \`now\` so tokens of later sessions get an
 * \`iat\` strictly after it. ARGV: base, outbox, issuer, nonce, now, user, entity, reason.
 * Returns the number of sessions ended.
 */
export const END_ALL_SESSIONS = luaScript(`${END_SESSION_LUA}
local base, outbox, issuer, nonce = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, user = tonumber(ARGV[5]), ARGV[6]
local index = base .. 'user:' .. user .. ':sessions'
local sids = redis.call('ZRANGE', index, 0, -1)
for _, sid in ipairs(sids) do
  redis.call('DEL', base .. 'session:' .. sid)
  redis.call('ZREM', base .. 'expiries', sid)
end
redis.call('DEL', index)
-- Sessions created since the previous "log out everywhere" got iat >= its second + 1, which may
-- still be ahead of now: this one is stamped no earlier than that second, so it covers them
-- (consumers revoke iat * 1000 <= T). At most one second ahead, like those iats.
local revoked_before = base .. 'user:' .. user .. ':revoked_before'
local previous = tonumber(redis.call('GET', revoked_before) or '0')
local at = math.max(now, (math.floor(previous / 1000) + 1) * 1000)
redis.call('SET', revoked_before, at)
append_revocation(outbox, nonce .. ':' .. user, issuer, at, user, nil, ARGV[7], ARGV[8])
return #sids
`);

/** Ends every expired session of one user. ARGV: base, outbox, issuer, nonce, now, user. */
export const END_EXPIRED = luaScript(`${END_SESSION_LUA}
return end_expired(ARGV[1], ARGV[2], ARGV[6], tonumber(ARGV[5]), ARGV[3], ARGV[4])
`);

/** Users of a shard with a session past its deadline. ARGV: base, now, limit. */
export const EXPIRED_USERS = luaScript(`
local base = ARGV[1]
local users = {}
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', base .. 'expiries', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))) do
  local user = redis.call('HGET', base .. 'session:' .. sid, 'user')
  if user then users[user] = true else redis.call('ZREM', base .. 'expiries', sid) end
end
local list = {}
for user in pairs(users) do table.insert(list, user) end
return list
`);

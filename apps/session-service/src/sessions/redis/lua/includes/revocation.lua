-- Shared by every command that ends sessions. `ctx` is the decoded JSON argument's common
-- part plus the shard keys: { base, outbox, expiries, issuer, nonce, now }.
--   base          prefix of the shard's keys (`<prefix>{o<n>}:`); a session is `base .. 'session:' .. sid`
--   outbox        the shard's outbox stream, where every revocation event is appended
--   expiries      the shard's zset: sid -> the earlier of its idle and absolute deadline
--   issuer, nonce the events' `iss`, and a fresh random prefix for their `jti`
--   now           milliseconds since the epoch
-- Ending a session deletes its hash, its refresh-token family and its opaque access tokens'
-- keys (delete_session); those keys are named from `base` and the session's hash, so they are
-- in the command's hash slot without being declared, as the session's own key is.

local SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'

-- The contract's limits on what goes into an event (libs/contracts), checked on a command's
-- input before it writes anything: a session end whose event could not be valid fails with
-- nothing done, instead of ending sessions whose event the publisher would dead-letter.
local MAX_TEXT_BYTES = 256
local function check_text(what, value, max)
  if type(value) ~= 'string' or #value == 0 or #value > max then
    error('invalid event input: ' .. what .. ' must be 1-' .. max .. ' bytes', 0)
  end
end
local function check_event_input(a)
  check_text('issuer', a.issuer, 512)
  if a.user ~= nil then check_text('user id', a.user, MAX_TEXT_BYTES) end
  if a.sid ~= nil then check_text('session id', a.sid, MAX_TEXT_BYTES) end
  if a.reason ~= nil then check_text('reason', a.reason, MAX_TEXT_BYTES) end
end

-- Appends a CAEP session-revoked SET (libs/contracts) to the outbox. Without `sid` it ends
-- every session of `user` that existed at `at`. Event ids are the call's nonce and a counter:
-- unique, and short whatever the identifiers.
local function append_revocation(ctx, at, user, sid, entity, reason)
  ctx.seq = (ctx.seq or 0) + 1
  local jti = ctx.nonce .. '.' .. ctx.seq
  local subject = { format = 'complex', user = { format = 'opaque', id = user } }
  if sid then subject.session = { format = 'opaque', id = sid } end
  local event = {
    jti = jti,
    iss = ctx.issuer,
    iat = math.floor(at / 1000),
    events = {
      [SESSION_REVOKED] = {
        subject = subject,
        event_timestamp = at / 1000,
        initiating_entity = entity,
        reason_admin = { en = reason },
      },
    },
  }
  redis.call('XADD', ctx.outbox, '*', 'key', user, 'event', cjson.encode(event))
end

-- A command's JSON reply, with how many events it appended (the caller waits for those to be
-- durable before it answers; see REDIS_DURABILITY).
local function reply(ctx, result)
  result.events = ctx.seq or 0
  return cjson.encode(result)
end

local function user_index(ctx, user)
  return ctx.base .. 'user:' .. user .. ':sessions'
end

-- Deletes a session, its refresh-token family and, for an opaque-token session, the keys of
-- its opaque access tokens (the session's hash names each as a field `at:<hash>`, and the key is
-- `base .. 'at:' .. <hash>`: same shard, same hash slot). The session's hash must exist.
local function delete_session(ctx, key)
  local s = redis.call('HMGET', key, 'family', 'format')
  if s[1] then redis.call('DEL', ctx.base .. 'refresh:' .. s[1]) end
  if s[2] == 'opaque' then
    for _, field in ipairs(redis.call('HKEYS', key)) do
      if string.sub(field, 1, 3) == 'at:' then redis.call('DEL', ctx.base .. field) end
    end
  end
  redis.call('DEL', key)
end

-- Ends one session with its event; returns its user, or nil when there was no such session.
local function end_session(ctx, sid, entity, reason)
  local key = ctx.base .. 'session:' .. sid
  local user = redis.call('HGET', key, 'user')
  if not user then return nil end
  delete_session(ctx, key)
  redis.call('ZREM', user_index(ctx, user), sid)
  redis.call('ZREM', ctx.expiries, sid)
  append_revocation(ctx, ctx.now, user, sid, entity, reason)
  return user
end

-- The `iat` (seconds) of a token issued at `now` for a session of a user whose last "log out
-- everywhere" was at `revoked_before` (ms): strictly after it, so that event never covers the
-- token, even in the same second (at most one second ahead of the clock).
local function token_iat(now, revoked_before)
  return math.max(math.floor(now / 1000), math.floor((tonumber(revoked_before) or 0) / 1000) + 1)
end

local function deadline(idle_ms, last_active, absolute_at)
  return math.min(last_active + idle_ms, absolute_at)
end

-- Makes `key` live at least until `at` (ms): an index of several sessions lives as long as the
-- longest-lived of them (each session also leaves it when it ends).
local function expire_not_before(key, at)
  if redis.call('PEXPIRETIME', key) < at then redis.call('PEXPIREAT', key, at) end
end

-- Ends the sessions of `user` whose idle or absolute deadline has passed; returns how many.
local function end_expired(ctx, user)
  local index = user_index(ctx, user)
  local ended = 0
  for _, sid in ipairs(redis.call('ZRANGE', index, 0, -1)) do
    local due = redis.call('ZSCORE', ctx.expiries, sid)
    if (not due) or tonumber(due) <= ctx.now then
      if not end_session(ctx, sid, 'system', 'expired') then redis.call('ZREM', index, sid) end
      ended = ended + 1
    end
  end
  return ended
end

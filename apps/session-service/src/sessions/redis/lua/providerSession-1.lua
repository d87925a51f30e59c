--[[
  The index of provider sessions (OpenID Connect `sid`) to our users, for logout tokens that
  carry a `sid` and no `sub`. One key per provider session, outside any user's hash slot (it is
  looked up before the user is known); the per-user commands then run in the user's slot.

  KEYS[1] the provider session's entry  string: the user id, or 'ended:' .. <user id or ''> once
                                        the provider logged the session out
  ARGV[1] JSON { op, user?, until?, now?, marker_ms? }
          op 'sign_in' (user, until): records the user for the provider session, kept until
             `until` (ms, the session's absolute deadline; the longest of its sessions wins);
             refused when the provider session already ended
          op 'logout' (now, marker_ms): marks the provider session ended, kept at least `marker_ms`
             (the entry keeps its user, so a retried logout still finds the sessions)

  Reply (JSON): sign_in: { "ok": true | false }   false: the provider session ended
                logout:  { "user": <user id> | false }
]]

local a = cjson.decode(ARGV[1])
local entry = redis.call('GET', KEYS[1])
local ended = entry and string.sub(entry, 1, 6) == 'ended:'

local function keep_until(at)
  if redis.call('PEXPIRETIME', KEYS[1]) < at then redis.call('PEXPIREAT', KEYS[1], at) end
end

if a.op == 'sign_in' then
  if ended then return cjson.encode({ ok = false }) end
  redis.call('SET', KEYS[1], a.user, 'KEEPTTL')
  keep_until(a['until'])
  return cjson.encode({ ok = true })
end

local user = entry
if ended then user = string.sub(entry, 7) end
if user == '' then user = nil end
redis.call('SET', KEYS[1], 'ended:' .. (user or ''), 'KEEPTTL')
keep_until(a.now + a.marker_ms)
return cjson.encode({ user = user or false })

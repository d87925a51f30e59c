--[[
  Stores an opaque access token (phantom token) of a live session: the SHA-256 of the token
  with the access JWT it stands for, expiring when that JWT expires. Runs after the sign-in or
  rotation step (the JWT is signed with the `iat` that step fixed). Nothing is stored when the
  session has ended meanwhile: an opaque token never outlives its session. The session's hash
  records the token (`at:<hash>` -> exp), so every command that ends the session deletes the
  token's key with it (includes/revocation.lua's delete_session); entries of tokens past their
  expiry are dropped here, so the hash holds only the few tokens that are still unexpired.

  KEYS[1] the session              hash (created by createSession)
  KEYS[2] the opaque token's key   hash jwt, sid, exp; `<base>at:<token hash>`, expires at exp
  ARGV[1] JSON { now, sid, hash, jwt, exp }
          hash: SHA-256 of the opaque token; exp: the JWT's expiry (ms)

  Reply (JSON): { "stored": true | false }   false: no such session (it ended)
]]

local a = cjson.decode(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then return cjson.encode({ stored = false }) end
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 3) == 'at:' and tonumber(fields[i + 1]) <= a.now then
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
redis.call('HSET', KEYS[2], 'jwt', a.jwt, 'sid', a.sid, 'exp', a.exp)
redis.call('PEXPIREAT', KEYS[2], a.exp)
redis.call('HSET', KEYS[1], 'at:' .. a.hash, a.exp)
return cjson.encode({ stored = true })

import { buildRevocationEvent, RevocationStore } from '@app/contracts';
import { errors, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { Registry } from 'prom-client';
import { Authenticator } from './authenticator';
import { GuardMetrics } from './guard-metrics';
import { TokenVerifier } from './verification/token-verifier';
import { VerifiedTokenCache } from './verification/verified-token-cache';
import { PartitionFreshness } from './view/freshness';

const ISSUER = 'http://issuer.test';
const AUDIENCE = 'apis';
const TTL = 300;
const T0 = Date.UTC(2026, 10, 29, 10, 0, 0, 250); // .250 into a second, on purpose

let signingKey: CryptoKey;
let published: { kid: string; alg: string; key: CryptoKey };

beforeAll(async () => {
  const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  signingKey = pair.privateKey;
  published = { kid: 'k1', alg: 'EdDSA', key: pair.publicKey };
});

function setup({ failOpen = false } = {}) {
  let now = T0;
  const clock = () => now;
  const store = new RevocationStore({ retentionMs: (TTL + 6) * 1000, now: clock });
  const freshness = new PartitionFreshness({ boundMs: 10_000, now: clock });
  freshness.track([0]);
  freshness.record(0, now);
  const cache = new VerifiedTokenCache({ maxEntries: 100, now: clock });
  const metrics = new GuardMetrics(new Registry(), { store, freshness, cache });
  const verifier = new TokenVerifier({
    // The issuer's one key, as a JWKS resolver gives it: by `kid`, for its own algorithm only.
    keys: (header) => {
      if (header.kid !== published.kid || header.alg !== published.alg)
        throw new errors.JWKSNoMatchingKey();
      return published.key;
    },
    issuer: ISSUER,
    audience: AUDIENCE,
    clockToleranceSeconds: 5,
    maxTokenAgeSeconds: TTL,
    cache,
    now: clock,
  });
  const verify = jest.spyOn(verifier, 'verify');
  const sync = new Authenticator({ verifier, store, freshness, metrics, failOpen });
  // The tests await every outcome; `sync` is there to see which come without a promise.
  const authenticator = {
    decide: (header: string | undefined, roles?: string[]) =>
      Promise.resolve(sync.decide(header, roles)),
  };
  return {
    sync,
    authenticator,
    store,
    freshness,
    verify,
    advance: (ms: number) => (now += ms),
    now: clock,
    bearer: (token: string) => `Bearer ${token}`,
  };
}

function sign(
  sid: string,
  { iatMs = T0, sub = 'alice', roles }: { iatMs?: number; sub?: string; roles?: string[] } = {},
) {
  const iat = Math.floor(iatMs / 1000);
  return new SignJWT({ sid, ...(roles && { roles }) })
    .setProtectedHeader({ alg: 'EdDSA', kid: 'k1', typ: 'at+jwt' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(sub)
    .setJti(`jti-${sid}-${iat}`)
    .setIssuedAt(iat)
    .setExpirationTime(iat + TTL)
    .sign(signingKey);
}

const logout = (sessionId: string, at: number) =>
  buildRevocationEvent({
    issuer: ISSUER,
    userId: 'alice',
    sessionId,
    initiatingEntity: 'user',
    reason: 'user_logout',
    at,
  });
const everywhere = (at: number) =>
  buildRevocationEvent({
    issuer: ISSUER,
    userId: 'alice',
    initiatingEntity: 'user',
    reason: 'logout_all',
    at,
  });

describe('Authenticator', () => {
  it('verifies a token once, then answers from the cache', async () => {
    const { authenticator, verify, bearer } = setup();
    const token = await sign('s1');
    for (let i = 0; i < 5; i += 1) {
      await expect(authenticator.decide(bearer(token))).resolves.toMatchObject({
        ok: true,
        stale: false,
        session: { sub: 'alice', sid: 's1' },
      });
    }
    expect(verify).toHaveBeenCalledTimes(1);
  });

  it('answers a cached token without a promise: the hot path never waits', async () => {
    const { sync, bearer } = setup();
    const token = await sign('s1');
    expect(sync.decide(bearer(token))).toBeInstanceOf(Promise); // first sight: verified
    await sync.decide(bearer(token));
    expect(sync.decide(bearer(token))).toMatchObject({ ok: true, session: { sid: 's1' } });
  });

  it('still rejects a cached (already verified) token once its session is revoked', async () => {
    const { authenticator, store, verify, bearer, now } = setup();
    const token = await sign('s1');
    await authenticator.decide(bearer(token));
    await authenticator.decide(bearer(token));
    store.apply(logout('s1', now()));
    await expect(authenticator.decide(bearer(token))).resolves.toMatchObject({
      ok: false,
      status: 401,
      reason: 'session_revoked',
      description: 'session revoked',
    });
    expect(verify).toHaveBeenCalledTimes(1); // the rejection came from the store, not the crypto
  });

  it('is exact across one second: a user-wide revocation at T rejects iat ≤ T, never a later iat', async () => {
    const { authenticator, store, bearer } = setup();
    const second = Math.floor(T0 / 1000) * 1000;
    const before = await sign('s-before', { iatMs: second }); // iat = this second
    const after = await sign('s-after', { iatMs: second + 1_000 }); // what the issuer gives a
    // session created after T in the same second: iat bumped to the next second
    store.apply(everywhere(second + 999)); // T late in the same second as `before`'s iat
    await expect(authenticator.decide(bearer(before))).resolves.toMatchObject({
      ok: false,
      reason: 'user_revoked',
    });
    await expect(authenticator.decide(bearer(after))).resolves.toMatchObject({ ok: true });
    // And T exactly at the start of the second still covers a token issued in it.
    const { authenticator: other, store: otherStore } = setup();
    otherStore.apply(everywhere(second));
    await expect(other.decide(bearer(before))).resolves.toMatchObject({ reason: 'user_revoked' });
  });

  it('answers 503 on a stale view (fail closed), and marks the answer when failing open', async () => {
    const closed = setup();
    const open = setup({ failOpen: true });
    const token = await sign('s1');
    closed.advance(10_001);
    open.advance(10_001);
    await expect(closed.authenticator.decide(closed.bearer(token))).resolves.toMatchObject({
      ok: false,
      status: 503,
      reason: 'stale_view',
      error: 'temporarily_unavailable',
    });
    await expect(open.authenticator.decide(open.bearer(token))).resolves.toMatchObject({
      ok: true,
      stale: true,
    });
    closed.freshness.record(0, closed.now());
    await expect(closed.authenticator.decide(closed.bearer(token))).resolves.toMatchObject({
      ok: true,
      stale: false,
    });
  });

  it('still says 401 for a revoked token on a stale view: what it knows, it enforces', async () => {
    const { authenticator, store, advance, bearer, now } = setup();
    const token = await sign('s1');
    store.apply(logout('s1', now()));
    advance(60_000);
    await expect(authenticator.decide(bearer(token))).resolves.toMatchObject({ status: 401 });
  });

  it('refuses a cached token after it expires (the cache drops it at exp)', async () => {
    const { authenticator, advance, bearer } = setup();
    const token = await sign('s1');
    await expect(authenticator.decide(bearer(token))).resolves.toMatchObject({ ok: true });
    advance(TTL * 1000 + 5_000); // past exp and the 5 s tolerance
    const outcome = await authenticator.decide(bearer(token));
    expect(outcome).toMatchObject({ ok: false, status: 401, description: 'expired' });
  });

  it('never serves a cached token past the max token age, where the store forgets revocations', async () => {
    // An issuer whose tokens outlive what the guard was told: exp 1 h, max age 300 s.
    const { authenticator, store, advance, bearer, now } = setup();
    const iat = Math.floor(T0 / 1000);
    const token = await new SignJWT({ sid: 's-long' })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'k1', typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject('alice')
      .setJti('long')
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3_600)
      .sign(signingKey);
    await expect(authenticator.decide(bearer(token))).resolves.toMatchObject({ ok: true });
    store.apply(logout('s-long', now()));
    advance(400_000); // past the store's retention: the revocation is pruned
    store.prune();
    await expect(authenticator.decide(bearer(token))).resolves.toMatchObject({
      ok: false,
      status: 401,
      description: 'expired',
    });
  });

  it('checks roles after everything else: 403 names the missing role', async () => {
    const { authenticator, bearer } = setup();
    const user = await sign('s1', { roles: ['user'] });
    const admin = await sign('s2', { roles: ['user', 'admin'] });
    await expect(authenticator.decide(bearer(user), ['admin'])).resolves.toMatchObject({
      ok: false,
      status: 403,
      error: 'insufficient_scope',
      description: 'requires role admin',
    });
    await expect(authenticator.decide(bearer(admin), ['admin'])).resolves.toMatchObject({
      ok: true,
    });
  });

  it('refuses a missing or malformed header without verifying anything', async () => {
    const { authenticator, verify } = setup();
    for (const header of [undefined, '', 'Basic abc', 'Bearer']) {
      await expect(authenticator.decide(header)).resolves.toMatchObject({
        ok: false,
        status: 401,
        reason: 'missing_token',
      });
    }
    for (const header of ['Bearer a b', 'Bearer !!%%']) {
      await expect(authenticator.decide(header)).resolves.toMatchObject({
        ok: false,
        status: 401,
        reason: 'invalid_token',
        description: 'malformed',
      });
    }
    expect(verify).not.toHaveBeenCalled();
  });
});

import { randomBytes } from 'node:crypto';
import { startOidcIssuer, type TestOidcIssuer } from '@app/testing';
import type { JWTPayload } from 'jose';
import { oidcUserId } from '../src/identity/user-directory';
import { providerSessionHash } from '../src/sessions/redis/redis-session.repository';
import { client, outbox, startSessionApp, type OutboxRecord, type SessionApp } from './session-app';

// OpenID Connect Back-Channel Logout 1.0 at POST /oidc/backchannel-logout (real Redis): the
// provider's logout token ends the sessions signed in with that provider session (`sid`), or
// with `sub` only every session of that user from that issuer, each with a revocation event in
// the outbox (system, "signed out at the identity provider"); every bad logout token is a 400
// that ends nothing.

const REASON = 'signed out at the identity provider';

describe('back-channel logout (real Redis)', () => {
  let idp: TestOidcIssuer;
  let other: TestOidcIssuer;
  let down: TestOidcIssuer;
  let app: SessionApp;
  let call: ReturnType<typeof client>;

  beforeAll(async () => {
    [idp, other, down] = await Promise.all([
      startOidcIssuer(),
      startOidcIssuer(),
      startOidcIssuer(),
    ]);
    await down.stop(); // trusted, but its keys cannot be fetched
    app = await startSessionApp({
      OIDC_ISSUERS: JSON.stringify(
        [idp, other, down].map((issuer) => ({
          issuer: issuer.issuer,
          jwks_uri: issuer.jwksUri,
          audience: issuer.audience,
        })),
      ),
    });
    call = client(app);
  });

  afterAll(async () => {
    await app.close();
    await Promise.all([idp.stop(), other.stop()]);
  });

  const unique = (what: string) => `${what}-${randomBytes(6).toString('hex')}`;

  interface Signed {
    sessionId: string;
    accessToken: string;
  }

  /** Signs in through POST /auth/oidc with an ID token carrying `sub` and (when given) `sid`. */
  async function signIn(sub: string, sid?: string, issuer = idp): Promise<Signed> {
    const idToken = await issuer.sign({ sub, ...(sid === undefined ? {} : { sid }) });
    const answer = await call('POST', '/auth/oidc', {
      body: { id_token: idToken, device: { name: unique('device') } },
    });
    expect(answer.status).toBe(200);
    return {
      sessionId: String(answer.body.session_id),
      accessToken: String(answer.body.access_token),
    };
  }

  async function live(session: Signed): Promise<boolean> {
    const answer = await call('GET', '/sessions', { token: session.accessToken });
    expect([200, 401]).toContain(answer.status);
    return answer.status === 200;
  }

  /** Posts a form (the logout token) as a provider does. */
  async function post(
    body: string,
    contentType = 'application/x-www-form-urlencoded',
  ): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
    const response = await fetch(`${app.url}/oidc/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body,
    });
    const text = await response.text();
    return {
      status: response.status,
      body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
      headers: response.headers,
    };
  }

  const logout = (token: string) => post(new URLSearchParams({ logout_token: token }).toString());

  async function eventsOf(sessionId: string): Promise<OutboxRecord[]> {
    return (await outbox(app)).filter((record) => record.sessionId === sessionId);
  }

  async function expectEndedByProvider(session: Signed): Promise<void> {
    expect(await live(session)).toBe(false);
    const events = await eventsOf(session.sessionId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ initiator: 'system', reason: REASON });
  }

  it('a logout token with sid (and sub) ends exactly that provider session’s sessions', async () => {
    const [alice, bob, sid] = [unique('alice'), unique('bob'), unique('sid')];
    const mine = await signIn(alice, sid);
    const sameProviderSession = await signIn(alice, sid); // a second app, silent SSO
    const otherProviderSession = await signIn(alice, unique('sid'));
    const notFromProvider = await signIn(alice);
    const someoneElse = await signIn(bob, unique('sid'));

    const answer = await logout(await idp.signLogoutToken({ sid, sub: alice }));
    expect(answer.status).toBe(200);
    expect(answer.headers.get('cache-control')).toBe('no-store');

    await expectEndedByProvider(mine);
    await expectEndedByProvider(sameProviderSession);
    for (const survivor of [otherProviderSession, notFromProvider, someoneElse]) {
      expect(await live(survivor)).toBe(true);
      expect(await eventsOf(survivor.sessionId)).toEqual([]);
    }
    // The event is the contract's: the user is ours, the session ours.
    const [event] = await eventsOf(mine.sessionId);
    expect(event?.key).toBe(oidcUserId(idp.issuer, alice));
  });

  it('sid only: found through the index of provider sessions', async () => {
    const [carol, sid] = [unique('carol'), unique('sid')];
    const first = await signIn(carol, sid);
    const second = await signIn(carol, sid);
    const another = await signIn(carol, unique('sid'));
    expect((await logout(await idp.signLogoutToken({ sid }))).status).toBe(200);
    await expectEndedByProvider(first);
    await expectEndedByProvider(second);
    expect(await live(another)).toBe(true);
  });

  it('sub only: every session of that user from that issuer', async () => {
    const [dave, erin] = [unique('dave'), unique('erin')];
    const sessions = [
      await signIn(dave, unique('sid')),
      await signIn(dave, unique('sid')),
      await signIn(dave),
    ];
    const sameSubAtAnotherIssuer = await signIn(dave, unique('sid'), other);
    const erins = await signIn(erin, unique('sid'));
    expect((await logout(await idp.signLogoutToken({ sub: dave }))).status).toBe(200);
    for (const session of sessions) await expectEndedByProvider(session);
    expect(await live(sameSubAtAnotherIssuer)).toBe(true);
    expect(await live(erins)).toBe(true);
  });

  it('sid with another user’s sub ends nothing (the sub must match)', async () => {
    const [frank, sid] = [unique('frank'), unique('sid')];
    const session = await signIn(frank, sid);
    expect((await logout(await idp.signLogoutToken({ sid, sub: unique('mallory') }))).status).toBe(
      200,
    );
    expect(await live(session)).toBe(true);
    expect(await eventsOf(session.sessionId)).toEqual([]);
  });

  it('already ended, or never known: 200, nothing new', async () => {
    const [gina, sid] = [unique('gina'), unique('sid')];
    const session = await signIn(gina, sid);
    expect((await logout(await idp.signLogoutToken({ sid }))).status).toBe(200);
    const before = (await outbox(app)).length;
    expect((await logout(await idp.signLogoutToken({ sid }))).status).toBe(200);
    expect((await logout(await idp.signLogoutToken({ sid, sub: gina }))).status).toBe(200);
    expect((await logout(await idp.signLogoutToken({ sid: unique('never-seen') }))).status).toBe(
      200,
    );
    expect((await outbox(app)).length).toBe(before);
    expect(await eventsOf(session.sessionId)).toHaveLength(1);
  });

  it('an ID token of a provider session already logged out opens no session', async () => {
    const [hank, sid] = [unique('hank'), unique('sid')];
    const idToken = await idp.sign({ sub: hank, sid }); // issued before the logout, used after
    expect((await logout(await idp.signLogoutToken({ sid }))).status).toBe(200);
    const late = await call('POST', '/auth/oidc', {
      body: { id_token: idToken, device: { name: 'x' } },
    });
    expect(late.status).toBe(401);
    expect(late.body).toMatchObject({ error: 'invalid_id_token' });
    await signIn(hank, unique('sid')); // another provider session of the same user is fine
  });

  it('the race: a sign-in indexed before the logout, its session created after it, is refused', async () => {
    const [kim, sid] = [unique('kim'), unique('sid')];
    await signIn(kim, unique('sid')); // the user is known
    const idToken = await idp.sign({ sub: kim, sid });
    expect((await logout(await idp.signLogoutToken({ sid, sub: kim }))).status).toBe(200);
    // As if the sign-in had indexed the provider session just before the logout marked it
    // ended: only the mark in the user's own slot, checked by the sign-in command, remains.
    await app.redis.del(`${app.prefix}idp-sid:${providerSessionHash(idp.issuer, sid)}`);
    const late = await call('POST', '/auth/oidc', {
      body: { id_token: idToken, device: { name: 'x' } },
    });
    expect(late.status).toBe(401);
    expect(late.body).toMatchObject({ error: 'invalid_id_token' });
  });

  it('every key the back-channel path writes expires by itself', async () => {
    const [lena, sid] = [unique('lena'), unique('sid')];
    await signIn(lena, sid);
    const index = `${app.prefix}idp-sid:${providerSessionHash(idp.issuer, sid)}`;
    expect(await app.redis.pttl(index)).toBeGreaterThan(0); // with the session's lifetime
    expect((await logout(await idp.signLogoutToken({ sid, sub: lena }))).status).toBe(200);
    const written = [
      index,
      ...(await app.redis.keys(`${app.prefix}{o*}:idp-ended:*`)),
      ...(await app.redis.keys(`${app.prefix}logout-jti:*`)),
    ];
    expect(written.length).toBeGreaterThanOrEqual(3);
    for (const key of written) {
      const ttl = await app.redis.pttl(key);
      expect({ key, expires: ttl > 0 }).toEqual({ key, expires: true });
    }
  });

  it('a second identical logout token (replayed jti) is a 400', async () => {
    const [ivan, sid] = [unique('ivan'), unique('sid')];
    await signIn(ivan, sid);
    const token = await idp.signLogoutToken({ sid });
    expect((await logout(token)).status).toBe(200);
    const again = await logout(token);
    expect(again.status).toBe(400);
    expect(again.body).toEqual({
      error: 'invalid_request',
      error_description: 'logout token was received before',
    });
  });

  it('503 when the issuer’s keys cannot be fetched (the provider retries); nothing ended', async () => {
    const [judy, sid] = [unique('judy'), unique('sid')];
    const victim = await signIn(judy, sid);
    const answer = await logout(await down.signLogoutToken({ sid, sub: judy }));
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('5');
    expect(await live(victim)).toBe(true);
  });

  it('is in the OpenAPI document: a public route taking a form', async () => {
    const document = (await (await fetch(`${app.url}/docs-json`)).json()) as {
      paths: Record<
        string,
        Record<
          string,
          { requestBody?: { content: object }; security?: unknown[]; responses: object }
        >
      >;
    };
    const operation = document.paths['/oidc/backchannel-logout']?.post;
    expect(Object.keys(operation?.requestBody?.content ?? {})).toEqual([
      'application/x-www-form-urlencoded',
    ]);
    expect(operation?.security).toEqual([]);
    expect(Object.keys(operation?.responses ?? {}).sort()).toEqual(['200', '400', '429', '503']);
  });

  describe('conformance: each bad request is a 400 that ends nothing', () => {
    const victimSub = unique('victim');
    const victimSid = unique('sid');
    let victim: Signed;
    let used: string;

    beforeAll(async () => {
      victim = await signIn(victimSub, victimSid);
      used = await idp.signLogoutToken({ sid: unique('nobody') });
      expect((await logout(used)).status).toBe(200);
    });

    const claims: JWTPayload = {};
    const cases: [string, () => Promise<string>][] = [
      [
        'wrong iss (an issuer not trusted)',
        async () => {
          const stranger = await startOidcIssuer();
          const token = await stranger.signLogoutToken({ sid: victimSid, sub: victimSub });
          await stranger.stop();
          return token;
        },
      ],
      [
        'wrong iss (another trusted issuer’s key, our iss)',
        async () => {
          // Signed by `other` with idp's iss: verified against idp's keys, refused.
          return other.signLogoutToken({ iss: idp.issuer, sid: victimSid, sub: victimSub });
        },
      ],
      ['wrong aud', () => idp.signLogoutToken({ aud: 'another-client', sid: victimSid })],
      ['expired', () => idp.signLogoutToken({ sid: victimSid }, { expiresIn: -60 })],
      ['nonce present', () => idp.signLogoutToken({ sid: victimSid }, { nonce: 'n-1' })],
      ['missing events', () => idp.signLogoutToken({ sid: victimSid, events: undefined })],
      [
        'wrong event URI',
        () =>
          idp.signLogoutToken({
            sid: victimSid,
            events: { 'http://schemas.openid.net/event/other': {} },
          }),
      ],
      ['neither sid nor sub', () => idp.signLogoutToken({ ...claims })],
      ['alg none', () => idp.signLogoutToken({ sid: victimSid, sub: victimSub }, { alg: 'none' })],
      ['unknown kid', () => idp.signLogoutToken({ sid: victimSid }, { kid: 'never-published' })],
      ['replayed jti', () => Promise.resolve(used)],
      [
        'typ JWT where logout+jwt is expected',
        () => idp.signLogoutToken({ sid: victimSid, sub: victimSub }, { typ: 'JWT' }),
      ],
      ['an ID token', () => idp.sign({ sub: victimSub, sid: victimSid })],
    ];

    it.each(cases)('%s', async (_, make) => {
      const token = await make();
      const before = (await outbox(app)).length;
      const answer = await logout(token);
      expect(answer.status).toBe(400);
      expect(answer.headers.get('cache-control')).toBe('no-store');
      expect(answer.body).toEqual({
        error: 'invalid_request',
        error_description: expect.any(String),
      });
      // Never echoes the token or its claims.
      expect(JSON.stringify(answer.body)).not.toContain(token.slice(0, 30));
      expect(JSON.stringify(answer.body)).not.toContain(victimSid);
      expect(await live(victim)).toBe(true);
      expect((await outbox(app)).length).toBe(before);
    });

    it('missing logout_token, not form-encoded, oversized', async () => {
      const valid = await idp.signLogoutToken({ sid: victimSid, sub: victimSub });
      const answers = [
        await post(''),
        await post('token=abc'),
        await post('logout_token='),
        await post(JSON.stringify({ logout_token: valid }), 'application/json'),
        await post(`logout_token=${valid}`, 'text/plain'),
        await post(new URLSearchParams({ logout_token: 'x'.repeat(16_385) }).toString()),
        await post(`logout_token=${valid}&padding=${'x'.repeat(40_000)}`),
      ];
      for (const answer of answers) {
        expect(answer.status).toBe(400);
        expect(answer.body).toMatchObject({ error: 'invalid_request' });
        expect(answer.headers.get('cache-control')).toBe('no-store');
      }
      expect(await live(victim)).toBe(true);
      expect(await eventsOf(victim.sessionId)).toEqual([]);
      // The same token, properly sent, is accepted: the refusals above were about the request.
      expect((await logout(valid)).status).toBe(200);
      await expectEndedByProvider(victim);
    });
  });
});

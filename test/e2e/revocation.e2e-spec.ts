import { setTimeout as sleep } from 'node:timers/promises';
import { startOidcIssuer, type TestOidcIssuer } from '@app/testing';
import { me, RevocationSystem, type Session } from './revocation-system';

// Issue 6, end to end: every app a separate process started from dist/ as `npm run stack`
// starts it, a real Kafka broker and Redis of this file's own (one test kills the broker), two
// instances of each API service. "Accepted everywhere": all four answer `GET /me` with 200 and
// the session's `{sub, session_id}`; "rejected everywhere": all four answer 401 with
// `WWW-Authenticate: Bearer error="invalid_token"`. Waits are bounded polls, never timings.

const PASSWORDS: Record<string, string> = {
  alice: 'alice-pass',
  bob: 'bob-pass',
  admin: 'admin-pass',
};

describe('session revocation, end to end (every app a process, real Kafka and Redis)', () => {
  let issuer: TestOidcIssuer;
  let system: RevocationSystem;
  let admin: Session;
  /** The `sub` of each demo user's access tokens: the `:userId` of the admin routes. */
  const subs: Record<string, string> = {};

  const signIn = (username: string, device: string) =>
    system.signIn(username, PASSWORDS[username]!, `${username}-${device}`);
  const signInAll = (username: string, devices: string[]) =>
    Promise.all(devices.map((device) => signIn(username, device)));
  const status = async (session: Session, method: string, path: string, body?: unknown) =>
    (await system.as(session, method, path, body)).status;

  beforeAll(async () => {
    issuer = await startOidcIssuer();
    system = new RevocationSystem({
      env: {
        'session-service': {
          // Sign-ins here outnumber the default per-username and per-IP limits.
          RATE_LIMIT_FAILS_PER_USERNAME: '10000',
          RATE_LIMIT_PER_IP: '10000',
          // A rotated refresh token presented again is a reuse at once (scenario 5).
          REFRESH_REUSE_GRACE_SECONDS: '0',
          // Only the paywall scenarios limit devices, by plan.
          DEFAULT_MAX_DEVICES: '100',
          OIDC_ISSUERS: JSON.stringify([
            { issuer: issuer.issuer, jwks_uri: issuer.jwksUri, audience: issuer.audience },
          ]),
        },
        'revocation-publisher': {
          HEARTBEAT_INTERVAL_MS: '200',
          // A restarted publisher resumes soon, and retries soon after the broker is back.
          OUTBOX_LEASE_MS: '3000',
          PUBLISH_RETRY_MAX_MS: '1000',
        },
      },
    });
    await system.start();
    const [adminSession, alice, bob] = await Promise.all(
      ['admin', 'alice', 'bob'].map((username) => signIn(username, 'setup')),
    );
    admin = adminSession!;
    subs.alice = alice!.sub;
    subs.bob = bob!.sub;
  });

  afterAll(async () => {
    // Either is missing when beforeAll failed before starting it.
    await (system as RevocationSystem | undefined)?.stop();
    await (issuer as TestOidcIssuer | undefined)?.stop();
  });

  // Every scenario starts with alice and bob signed out everywhere and on the default plan.
  // The admin's access token lives 5 minutes: rotate it so it never expires mid-suite.
  beforeEach(async () => {
    const { reply, session } = await system.refresh(admin.refreshToken, 'admin');
    if (!session) throw new Error(`admin refresh answered ${reply.status}`);
    admin = session;
    for (const user of ['alice', 'bob']) {
      expect(await status(admin, 'POST', `/admin/users/${subs[user]!}/logout-all`)).toBe(204);
      expect(await setPlan(user, 100, 'evict_oldest')).toBe(200);
    }
  });

  const setPlan = (user: string, maxDevices: number, policy: 'evict_oldest' | 'reject') =>
    status(admin, 'PUT', `/admin/users/${subs[user]!}/plan`, { max_devices: maxDevices, policy });

  it('1. paywall evict_oldest, one device: the laptop signing in ends the phone everywhere', async () => {
    expect(await setPlan('alice', 1, 'evict_oldest')).toBe(200);
    const phone = await signIn('alice', 'phone');
    await system.expectEverywhere('accepted', [phone]);

    const laptop = await signIn('alice', 'laptop');
    await system.expectEverywhere('rejected', [phone]);
    await system.expectEverywhere('accepted', [laptop]);
  });

  it('2. paywall reject: the second device gets 409 listing the first, and signs in once the first logs out', async () => {
    expect(await setPlan('alice', 1, 'reject')).toBe(200);
    const phone = await signIn('alice', 'phone');
    await system.expectEverywhere('accepted', [phone]);

    const refused = await system.login('alice', 'alice-pass', 'alice-laptop');
    expect(refused.reply.status).toBe(409);
    expect(refused.reply.body).toEqual(
      expect.objectContaining({
        error: 'device_limit_reached',
        sessions: [expect.objectContaining({ session_id: phone.sessionId })],
      }),
    );
    // Refusing the laptop ended nothing.
    expect(await status(phone, 'GET', '/sessions')).toBe(200);
    await system.expectEverywhere('accepted', [phone]);

    expect(await status(phone, 'POST', '/auth/logout')).toBe(204);
    await system.expectEverywhere('rejected', [phone]);
    const laptop = await signIn('alice', 'laptop');
    await system.expectEverywhere('accepted', [laptop]);
  });

  /** Scenario 3's steps; scenario 7 runs them again with the broker killed meanwhile. */
  async function logoutOneThenEverywhere(whileRevoking?: {
    before(): Promise<void>;
    after(): Promise<void>;
  }) {
    const [phone, laptop, tablet, tv] = (await signInAll('alice', [
      'phone',
      'laptop',
      'tablet',
      'tv',
    ])) as [Session, Session, Session, Session];
    await system.expectEverywhere('accepted', [phone, laptop, tablet, tv]);

    let fresh: Session;
    await whileRevoking?.before();
    try {
      expect(await status(phone, 'POST', '/auth/logout')).toBe(204);
      if (!whileRevoking) {
        await system.expectEverywhere('rejected', [phone]);
        await system.expectEverywhere('accepted', [laptop, tablet, tv]);
      }
      expect(await status(laptop, 'POST', '/auth/logout-all')).toBe(204);
      fresh = await signIn('alice', 'new-phone');
    } finally {
      await whileRevoking?.after();
    }
    const recovery = { timeoutMs: whileRevoking ? 120_000 : 30_000 };
    await system.expectEverywhere('rejected', [phone, laptop, tablet, tv], recovery);
    // Only now, with "log out everywhere" applied by every instance: it spares the new session.
    await system.expectEverywhere('accepted', [fresh], recovery);
  }

  it('3. logging out one device ends only it; "log out everywhere" ends the rest, not a sign-in right after it', async () => {
    await logoutOneThenEverywhere();
  });

  it('3b. a second "log out everywhere" in the same second as the first also ends the session signed in between them', async () => {
    // A session signed in just after a "log out everywhere" gets an `iat` up to one second
    // ahead (the next whole second); a second one within that second must still cover it.
    const first = await signIn('alice', 'phone');
    await sleep(1000 - (Date.now() % 1000) + 20); // just past a second boundary
    expect(await status(first, 'POST', '/auth/logout-all')).toBe(204);
    const laptop = await signIn('alice', 'laptop');
    expect(await status(laptop, 'POST', '/auth/logout-all')).toBe(204);
    // The session service agrees the laptop's session is over…
    expect(await status(laptop, 'GET', '/sessions')).toBe(401);
    // …and so must every API instance.
    await system.expectEverywhere('rejected', [first, laptop]);
  });

  it('4. an admin forces a logout (one session, then all of a user’s); a non-admin cannot (403)', async () => {
    const [bobPhone, bobLaptop, alicePhone] = await Promise.all([
      signIn('bob', 'phone'),
      signIn('bob', 'laptop'),
      signIn('alice', 'phone'),
    ]);
    await system.expectEverywhere('accepted', [bobPhone, bobLaptop, alicePhone]);

    const aliceSub = subs.alice!;
    expect({
      logoutAll: await status(bobPhone, 'POST', `/admin/users/${aliceSub}/logout-all`),
      endSession: await status(bobPhone, 'DELETE', `/admin/sessions/${alicePhone.sessionId}`),
      list: await status(bobPhone, 'GET', `/admin/users/${aliceSub}/sessions`),
      plan: await status(bobPhone, 'PUT', `/admin/users/${aliceSub}/plan`, {
        max_devices: 1,
        policy: 'reject',
      }),
    }).toEqual({ logoutAll: 403, endSession: 403, list: 403, plan: 403 });
    // Alice's session survived the attempts (the session service is exact about its sessions).
    const aliceSessions = await system.as(alicePhone, 'GET', '/sessions');
    expect(aliceSessions.status).toBe(200);
    expect(aliceSessions.body).toEqual(
      expect.arrayContaining([expect.objectContaining({ session_id: alicePhone.sessionId })]),
    );

    expect(await status(admin, 'DELETE', `/admin/sessions/${bobPhone.sessionId}`)).toBe(204);
    await system.expectEverywhere('rejected', [bobPhone]);
    await system.expectEverywhere('accepted', [bobLaptop]);

    expect(await status(admin, 'POST', `/admin/users/${subs.bob!}/logout-all`)).toBe(204);
    await system.expectEverywhere('rejected', [bobLaptop]);
    await system.expectEverywhere('accepted', [alicePhone]);
  });

  it('5. a stolen refresh token: the victim’s refresh after the attacker’s is a reuse, and the session ends everywhere, the attacker’s tokens included', async () => {
    const victim = await signIn('alice', 'phone');
    await system.expectEverywhere('accepted', [victim]);

    const stolen = await system.refresh(victim.refreshToken, 'attacker');
    expect(stolen.reply.status).toBe(200);
    const attacker = stolen.session!;
    expect(attacker.sessionId).toBe(victim.sessionId);
    await system.expectEverywhere('accepted', [attacker]);

    const reuse = await system.refresh(victim.refreshToken, 'victim-again');
    expect({ status: reuse.reply.status, error: reuse.reply.body.error }).toEqual({
      status: 401,
      error: 'invalid_grant',
    });
    await system.expectEverywhere('rejected', [victim, attacker]);
    const attackerAgain = await system.refresh(attacker.refreshToken, 'attacker-again');
    expect({ status: attackerAgain.reply.status, error: attackerAgain.reply.body.error }).toEqual({
      status: 401,
      error: 'invalid_grant',
    });
  });

  it('6. an API instance started after a revocation rejects the revoked tokens from its first ready moment', async () => {
    const [phone, laptop] = (await signInAll('alice', ['phone', 'laptop'])) as [Session, Session];
    await system.expectEverywhere('accepted', [phone, laptop]);
    expect(await status(phone, 'POST', '/auth/logout')).toBe(204);
    expect(await status(laptop, 'POST', '/auth/logout-all')).toBe(204);
    const tablet = await signIn('alice', 'tablet');
    // Known applied: every running instance rejects both.
    await system.expectEverywhere('rejected', [phone, laptop]);

    const late = await system.startApi('content-api', 'content-api-late');
    try {
      // The first requests it ever serves, right after /health/ready answered 200.
      const first = await Promise.all([me(late, phone), me(late, laptop)]);
      expect(first.map((answer) => [answer.status, answer.invalidToken, answer.detail])).toEqual([
        [401, true, expect.any(String)],
        [401, true, expect.any(String)],
      ]);
      await system.expectEverywhere('accepted', [tablet], { apis: [...system.apis, late] });
    } finally {
      await system.stopApp(late);
    }
  });

  it('7. the Kafka broker SIGKILLed during logouts and "log out everywhere", then restarted: nothing is lost', async () => {
    await logoutOneThenEverywhere({
      before: () => system.kafka.kill().then(() => undefined),
      after: () => system.kafka.restart(),
    });
  });

  it('8. the publisher SIGKILLed and restarted (same INSTANCE_ID) during a stream of logouts: nothing is lost', async () => {
    // Several users signed in through OpenID Connect (no password hashing: many sessions fast).
    const users = Array.from({ length: 8 }, (_, u) => `stream-user-${u}`);
    const signInOidc = (user: string, device: string) =>
      system.signInOidc(issuer, user, `${user}-${device}`);
    // Interleaved by user, as a stream from many clients would be.
    const doomed = await Promise.all(
      [0, 1, 2, 3, 4].flatMap((d) => users.map((user) => signInOidc(user, `device-${d}`))),
    );
    const keepers = await Promise.all(users.map((user) => signInOidc(user, 'keeper')));
    await system.expectEverywhere('accepted', [...doomed, ...keepers]);

    const answers: number[] = [];
    let killed: Promise<void> | undefined;
    let restarted: Promise<void> | undefined;
    for (const [i, session] of doomed.entries()) {
      if (i === 15) killed = system.killPublisher(); // while earlier logouts may be in flight
      if (i === 20) await killed; // these ten are written while no publisher runs
      if (i === 30) restarted = system.restartPublisher(); // and these while it starts
      answers.push(await status(session, 'POST', '/auth/logout'));
    }
    await restarted;
    expect(answers).toEqual(doomed.map(() => 204));

    await system.expectEverywhere('rejected', doomed, { timeoutMs: 60_000 });
    await system.expectEverywhere('accepted', keepers);
  });
});

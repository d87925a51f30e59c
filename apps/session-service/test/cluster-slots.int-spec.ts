import {
  keySlot,
  ScriptSlotRecorder,
  startOidcIssuer,
  testInfra,
  type TestOidcIssuer,
} from '@app/testing';
import { Redis } from 'ioredis';
import { SessionService } from '../src/sessions/session.service';
import { client, startSessionApp, type SessionApp } from './session-app';

// What Redis Cluster demands of a script, checked as `redis-cli --cluster` would: every key it
// declares and every key it touches in one hash slot (the user's outbox shard's). Every
// session command is run here, on every path that touches keys (evictions, expiry, reuse,
// logout-all, replay refusal), under MONITOR.

describe('session commands keep to one hash slot (real Redis, MONITOR)', () => {
  let app: SessionApp;
  let issuer: TestOidcIssuer;
  let recorder: ScriptSlotRecorder;
  let call: ReturnType<typeof client>;

  beforeAll(async () => {
    issuer = await startOidcIssuer();
    app = await startSessionApp({
      DEFAULT_MAX_DEVICES: '2',
      OIDC_ISSUERS: JSON.stringify([
        { issuer: issuer.issuer, jwks_uri: issuer.jwksUri, audience: issuer.audience },
      ]),
    });
    recorder = await ScriptSlotRecorder.start(testInfra().redisUrl, app.prefix);
    call = client(app);
  });

  afterAll(async () => {
    await recorder.stop();
    await app.close();
    await issuer.stop();
  });

  const login = async (username: string, device: string) => {
    app.clock.advance(10); // one after the other, so "least recently active" is well defined
    return (
      await call('POST', '/auth/login', {
        body: { username, password: `${username}-pass`, device: { name: device } },
      })
    ).body;
  };

  it('every script of every path, for users of every shard', async () => {
    const admin = String((await login('admin', 'console')).access_token);
    for (const user of ['alice', 'bob']) {
      const first = await login(user, 'phone');
      await login(user, 'laptop');
      await login(user, 'tv'); // evicts the phone: device limit 2
      const rotated = await call('POST', '/auth/refresh', {
        body: { refresh_token: first.refresh_token },
      }); // the phone is gone: invalid
      expect(rotated.status).toBe(401);
      const tv = await login(user, 'tablet');
      const next = await call('POST', '/auth/refresh', {
        body: { refresh_token: tv.refresh_token },
      });
      app.clock.advance(6_000);
      await call('POST', '/auth/refresh', { body: { refresh_token: tv.refresh_token } }); // reuse
      await call('GET', '/sessions', { token: String(next.body.access_token) });
      await call('POST', '/auth/logout', { token: String(next.body.access_token) });
      await call('POST', `/admin/users/${user}/logout-all`, { token: admin });
      const idle = await login(user, 'desk');
      await call('DELETE', `/admin/sessions/${String(idle.session_id)}`, { token: admin });
      const kept = await login(user, 'kept');
      const replacing = await call('POST', '/auth/login', {
        body: {
          username: user,
          password: `${user}-pass`,
          device: { name: 'replacing' },
          end_session_id: kept.session_id,
        },
      }); // ends the named session first
      expect(replacing.status).toBe(200);
    }
    // Opaque access tokens: stored at sign-in and refresh, deleted with their session.
    for (const user of ['alice', 'bob']) {
      const opaque = await call('POST', '/auth/login', {
        body: {
          username: user,
          password: `${user}-pass`,
          device: { name: 'opaque' },
          token_format: 'opaque',
        },
      });
      const refreshed = await call('POST', '/auth/refresh', {
        body: { refresh_token: opaque.body.refresh_token },
      });
      expect(refreshed.status).toBe(200);
      await call('POST', '/auth/logout', { token: String(refreshed.body.access_token) });
    }
    const idToken = await issuer.sign({ sub: 'ext-slots' });
    await call('POST', '/auth/oidc', { body: { id_token: idToken, device: { name: 'x' } } });
    await call('POST', '/auth/oidc', { body: { id_token: idToken, device: { name: 'x' } } }); // replay
    // Back-channel logout (issue 14): by sid only (through the index), by sid and sub, by sub
    // only, and a sign-in of a provider session already logged out, for users of several shards.
    const backchannelLogout = async (claims: Record<string, string>) => {
      const token = await issuer.signLogoutToken(claims);
      const answer = await call('POST', '/oidc/backchannel-logout', {
        body: new URLSearchParams({ logout_token: token }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(answer.status).toBe(200);
    };
    for (let i = 0; i < 4; i += 1) {
      const [sub, sid] = [`ext-slots-${i}`, `sid-slots-${i}`];
      for (const device of ['a', 'b']) {
        const signIn = await call('POST', '/auth/oidc', {
          body: { id_token: await issuer.sign({ sub, sid }), device: { name: device } },
        });
        expect(signIn.status).toBe(200);
      }
      await backchannelLogout(i % 2 === 0 ? { sid } : { sid, sub });
      await backchannelLogout({ sub });
      const late = await call('POST', '/auth/oidc', {
        body: { id_token: await issuer.sign({ sub, sid }), device: { name: 'late' } },
      });
      expect(late.status).toBe(401);
    }
    await login('alice', 'old');
    app.clock.advance(13 * 3600 * 1000);
    await app.app.get(SessionService).sweepExpired();

    const runs = await recorder.scriptRuns();
    expect(runs.length).toBeGreaterThan(30);
    for (const { declared, touched } of runs) {
      // Without a declared key, Redis Cluster cannot route the script at all.
      expect({ declared, some: declared.length > 0 }).toEqual({ declared, some: true });
      const slots = new Set([...declared, ...touched].map(keySlot));
      expect({ declared, touched, slots: slots.size }).toEqual({ declared, touched, slots: 1 });
      // And a script touches its own keys only: none outside what it was given or derives.
      for (const key of touched) expect(key.startsWith(app.prefix)).toBe(true);
    }
  });

  it('a refresh is one Redis round trip', async () => {
    const watcher = new Redis(testInfra().redisUrl);
    const commands: string[] = [];
    const monitor = await watcher.monitor();
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      // Commands of the app's clients (not those its scripts run), about its keys.
      if (source !== 'lua' && args.some((arg) => arg.startsWith(app.prefix)))
        commands.push(String(args[0]).toLowerCase());
    });
    try {
      let token = String((await login('bob', 'watch')).refresh_token);
      await new Promise((resolve) => setTimeout(resolve, 200));
      commands.length = 0;
      for (let i = 0; i < 10; i += 1) {
        const refreshed = await call('POST', '/auth/refresh', { body: { refresh_token: token } });
        expect(refreshed.status).toBe(200);
        token = String(refreshed.body.refresh_token);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(commands).toEqual(Array(10).fill('evalsha'));
    } finally {
      monitor.disconnect();
      watcher.disconnect();
    }
  });
});

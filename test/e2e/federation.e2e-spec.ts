// Single sign-on and the provider's logout, end to end (issue 14): a real OpenID provider
// (apps/dev-idp, oidc-provider), two gateway instances, the session service, the publisher,
// two instances of each API, real Kafka and Redis, each app a process of its own. A user signs
// in at one gateway through the provider, then at the other silently through the provider's
// single sign-on session; signing out at the provider makes the provider call the session
// service's back-channel logout, and every API and gateway instance refuses both sessions.
import { SESSION_REVOKED } from '@app/contracts';
import {
  BrowserClient,
  eventually,
  parseForms,
  signInThroughProvider,
  testInfra,
  TopicRecorder,
  uniqueName,
} from '@app/testing';
import { Redis } from 'ioredis';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { startSystem, type AppHandle, type RunningSystem } from '../../scripts/system.ts';

const COOKIE = '__Host-session';
const ALICE = { username: 'alice', password: 'alice-pass' };

let system: RunningSystem;
let recorder: TopicRecorder;
let redis: Redis;
const keyPrefix = `${uniqueName('federation')}:`;
const gatewayPrefix = `${keyPrefix}gw:`;

beforeAll(async () => {
  const infra = testInfra();
  const topic = uniqueName('federation-revocations');
  redis = new Redis(infra.redisUrl, { lazyConnect: true });
  system = await startSystem({
    dataDir: join(process.env.TEST_DATA_DIR ?? '/tmp', topic),
    apps: [
      'dev-idp',
      'session-service',
      'revocation-publisher',
      'content-api',
      'account-api',
      'gateway',
    ],
    instances: { 'content-api': 2, 'account-api': 2, gateway: 2 },
    kafka: { brokers: infra.kafkaBrokers.join(',') },
    redis: { url: infra.redisUrl },
    env: (app): Record<string, string> => {
      switch (app) {
        case 'session-service':
          return {
            REDIS_KEY_PREFIX: keyPrefix,
            DEFAULT_MAX_DEVICES: '50',
            RATE_LIMIT_FAILS_PER_USERNAME: '1000',
            RATE_LIMIT_PER_IP: '1000',
          };
        case 'revocation-publisher':
          return { REDIS_KEY_PREFIX: keyPrefix, REVOCATION_TOPIC: topic };
        case 'gateway':
          return { REVOCATION_TOPIC: topic, GATEWAY_KEY_PREFIX: gatewayPrefix };
        case 'content-api':
        case 'account-api':
          return { REVOCATION_TOPIC: topic };
        case 'dev-idp':
        case 'ssf-transmitter':
          return {};
      }
    },
  });
  recorder = await TopicRecorder.start(infra.kafkaBrokers, topic);
  await redis.connect();
});

afterAll(async () => {
  await (recorder as TopicRecorder | undefined)?.stop();
  redis.disconnect();
  await (system as RunningSystem | undefined)?.stop();
});

const providerUrl = () => system.devIdpUrl ?? '';

/** A gateway instance at the host a browser would use for it (hosts keep cookie jars apart). */
const gatewayAt = (gateway: AppHandle, host: string) => `http://${host}:${gateway.port}`;

/** The access JWT the gateway keeps for the cookie session `handle` (read from its Redis). */
async function accessTokenOf(handle: string): Promise<string> {
  const key = `${gatewayPrefix}bff:${createHash('sha256').update(handle).digest('hex')}`;
  const stored = await redis.get(key);
  if (stored === null) throw new Error('the gateway keeps no tokens for this cookie');
  return (JSON.parse(stored) as { access_token: string }).access_token;
}

async function status(url: string, headers: Record<string, string>): Promise<number> {
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  await response.body?.cancel();
  return response.status;
}

describe('single sign-on through the dev provider, and signing out there', () => {
  it('ends the session at every API and gateway instance when the user signs out at the provider', async () => {
    const [first, second] = system.instances('gateway');
    if (!first || !second) throw new Error('two gateway instances expected');
    const browser = new BrowserClient();
    const sites = [
      { origin: gatewayAt(first, '127.0.0.1'), host: '127.0.0.1' },
      { origin: gatewayAt(second, 'localhost'), host: 'localhost' },
    ];

    // One sign-in at the provider's login form; the second gateway gets in by single sign-on.
    const sessions = [];
    for (const [i, site] of sites.entries()) {
      const landed = await signInThroughProvider(
        browser,
        `${site.origin}/bff/login/oidc?return_to=/`,
        providerUrl(),
        ALICE,
      );
      expect({ url: landed.url, loginForms: landed.loginForms }).toEqual({
        url: `${site.origin}/`,
        loginForms: i === 0 ? 1 : 0,
      });
      const handle = browser.cookie(site.host, COOKIE);
      if (!handle) throw new Error(`no session cookie from ${site.origin}`);
      const reply = await browser.request(`${site.origin}/bff/session`);
      expect(reply.status).toBe(200);
      const body = (await reply.json()) as { session_id: string; user: { sub: string } };
      sessions.push({ ...site, handle, sessionId: body.session_id, sub: body.user.sub });
    }
    const [one, two] = sessions;
    if (!one || !two) throw new Error('two sessions expected');
    expect(one.sub).toBe(two.sub);
    expect(one.sessionId).not.toBe(two.sessionId);

    // Both are served: through the gateways with the cookie, and at every API instance with
    // the access token the gateway keeps.
    const apis = [...system.instances('content-api'), ...system.instances('account-api')];
    expect(apis).toHaveLength(4);
    const tokens = await Promise.all(sessions.map((s) => accessTokenOf(s.handle)));
    for (const site of sessions) {
      const reply = await browser.request(`${site.origin}/api/content/me`, {
        headers: { 'x-csrf': '1' },
      });
      expect({ site: site.origin, status: reply.status }).toEqual({
        site: site.origin,
        status: 200,
      });
    }
    for (const api of apis)
      for (const token of tokens)
        expect({ api: api.label, status: await status(`${api.url}/me`, bearer(token)) }).toEqual({
          api: api.label,
          status: 200,
        });

    // Sign out at the provider (its end-session page and confirmation form, no id_token_hint).
    const confirm = await browser.navigate(`${providerUrl()}/session/end`);
    const [form] = parseForms(confirm.text, confirm.url);
    if (!form) throw new Error(`no sign-out form at ${confirm.url}: ${confirm.status}`);
    await browser.submit(form);

    // The provider's back-channel logout ended both sessions: refused at every API instance,
    // and at each gateway (whose cookie session also ends).
    await eventually('every API instance to refuse both sessions', async () => {
      const answers = await Promise.all(
        apis.flatMap((api) => tokens.map((token) => status(`${api.url}/me`, bearer(token)))),
      );
      return answers.every((answer) => answer === 401);
    });
    for (const site of sessions)
      await eventually(`${site.origin} to refuse its cookie session`, async () => {
        const reply = await browser.request(`${site.origin}/api/content/me`, {
          headers: { 'x-csrf': '1' },
        });
        await reply.body?.cancel();
        return reply.status === 401;
      });

    // One event per session, from the system, saying why.
    const ended = await eventually('both revocation events on the topic', () => {
      const events = recorder.revocations
        .map((r) => r.event.events[SESSION_REVOKED])
        .filter((e) => e.subject.user.id === one.sub);
      return events.length >= 2 && events;
    });
    expect(ended.map((e) => e.subject.session?.id).sort()).toEqual(
      [one.sessionId, two.sessionId].sort(),
    );
    for (const event of ended) {
      expect(event.initiating_entity).toBe('system');
      expect(event.reason_admin?.en).toMatch(/identity provider/);
    }

    const cookieAfter = await browser.request(`${one.origin}/bff/session`);
    expect(cookieAfter.status).toBe(401);

    // The provider's session is gone too: the same browser is asked for its password again.
    const again = await signInThroughProvider(
      browser,
      `${one.origin}/bff/login/oidc?return_to=/`,
      providerUrl(),
      ALICE,
    );
    expect(again.loginForms).toBe(1);
  });
});

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

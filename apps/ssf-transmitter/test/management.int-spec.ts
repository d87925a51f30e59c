// The SSF 1.0 management API against the real transmitter process: discovery, bad input,
// stream status (paused holds, disabled drops), subjects, verification events, poll delivery
// (RFC 8936) with acknowledgements, and a crash and restart that neither loses nor re-delivers.
import { DELIVERY_POLL, DELIVERY_PUSH, SESSION_REVOKED, SSF_VERIFICATION } from '@app/contracts';
import { eventually } from '@app/testing';
import { decodeJwt } from 'jose';
import { setTimeout as sleep } from 'node:timers/promises';
import { auth, CLIENTS, revocation, SsfFixture, TestReceiver } from './ssf-fixture';

jest.setTimeout(60_000);

const fixture = new SsfFixture();
let receiver: TestReceiver;

beforeAll(async () => {
  await fixture.start();
  receiver = await TestReceiver.start(fixture.url, `${fixture.url}/jwks.json`, CLIENTS[0].audience);
});

afterAll(async () => {
  await receiver.close();
  await fixture.stop();
});

async function pushStream(body: Record<string, unknown> = {}): Promise<string> {
  const created = await fixture.call('POST', '/ssf/streams', {
    body: { delivery: { method: DELIVERY_PUSH, endpoint_url: receiver.url }, ...body },
  });
  expect(created.status).toBe(201);
  return String(created.body.stream_id);
}

const setStatus = (stream_id: string, status: string) =>
  fixture.call('POST', '/ssf/status', { body: { stream_id, status } });

describe('discovery', () => {
  it('names every endpoint, both delivery methods and the JWKS with the signing key', async () => {
    const { status, body } = await fixture.call('GET', '/.well-known/ssf-configuration', {
      headers: {},
    });
    expect(status).toBe(200);
    expect(body).toEqual({
      spec_version: '1_0',
      issuer: fixture.url,
      jwks_uri: `${fixture.url}/jwks.json`,
      delivery_methods_supported: [DELIVERY_PUSH, DELIVERY_POLL],
      configuration_endpoint: `${fixture.url}/ssf/streams`,
      status_endpoint: `${fixture.url}/ssf/status`,
      add_subject_endpoint: `${fixture.url}/ssf/subjects:add`,
      remove_subject_endpoint: `${fixture.url}/ssf/subjects:remove`,
      verification_endpoint: `${fixture.url}/ssf/verify`,
      authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6750' }],
      default_subjects: 'ALL',
    });
    const jwks = await fixture.call('GET', '/jwks.json', { headers: {} });
    expect(jwks.body.keys).toEqual([
      expect.objectContaining({
        kty: 'OKP',
        crv: 'Ed25519',
        alg: 'EdDSA',
        kid: expect.any(String),
      }),
    ]);
    expect(JSON.stringify(jwks.body)).not.toContain('"d"');
  });
});

describe('bad input', () => {
  const push = { method: DELIVERY_PUSH, endpoint_url: 'http://127.0.0.1:9/events' };
  it.each([
    ['not JSON', '{"delivery":'],
    ['an unknown delivery method', { delivery: { method: 'urn:example:carrier-pigeon' } }],
    ['push without endpoint_url', { delivery: { method: DELIVERY_PUSH } }],
    [
      'push over http to another host',
      { delivery: { ...push, endpoint_url: 'http://receiver.example/e' } },
    ],
    ['an endpoint_url that is no URL', { delivery: { ...push, endpoint_url: 'not a url' } }],
    [
      'poll with an endpoint_url',
      { delivery: { method: DELIVERY_POLL, endpoint_url: push.endpoint_url } },
    ],
    ['events_requested not a list', { delivery: push, events_requested: SESSION_REVOKED }],
    [
      'only unknown events requested',
      { delivery: push, events_requested: ['urn:example:nothing'] },
    ],
    ['an unknown property', { delivery: push, evnts_requested: [SESSION_REVOKED] }],
  ])('refuses a stream configuration with %s: 400', async (_what, body) => {
    const { status, body: answer } = await fixture.call('POST', '/ssf/streams', { body });
    expect(status).toBe(400);
    expect(answer).toEqual({ error: 'invalid_request', error_description: expect.any(String) });
  });

  it('leaves unknown requested events out of events_delivered', async () => {
    const { status, body } = await fixture.call('POST', '/ssf/streams', {
      body: { delivery: push, events_requested: [SESSION_REVOKED, 'urn:example:other'] },
    });
    expect(status).toBe(201);
    expect(body).toMatchObject({
      events_requested: [SESSION_REVOKED, 'urn:example:other'],
      events_delivered: [SESSION_REVOKED],
      events_supported: [SESSION_REVOKED],
      aud: CLIENTS[0].audience,
      iss: fixture.url,
    });
    await fixture.call('DELETE', `/ssf/streams?stream_id=${String(body.stream_id)}`);
  });

  it.each([
    ['no token', {}],
    ['a wrong token', { authorization: 'Bearer not-a-configured-token-at-all' }],
    ['another scheme', { authorization: `Basic ${CLIENTS[0].token}` }],
  ])('answers management calls with %s 401', async (_what, headers) => {
    for (const [method, path] of [
      ['GET', '/ssf/streams'],
      ['POST', '/ssf/streams'],
      ['GET', '/ssf/status?stream_id=x'],
      ['POST', '/ssf/verify'],
      ['POST', '/ssf/poll/x'],
    ] as const) {
      const answer = await fixture.call(method, path, {
        headers,
        body: method === 'POST' ? {} : undefined,
      });
      expect([method, path, answer.status, answer.body.error]).toEqual([
        method,
        path,
        401,
        'invalid_token',
      ]);
    }
  });

  it("shows a client none of another client's streams: 404, and no change", async () => {
    const theirs = await pushStream();
    const other = auth(CLIENTS[1]);
    for (const [method, path, body] of [
      ['GET', `/ssf/streams?stream_id=${theirs}`, undefined],
      ['PATCH', '/ssf/streams', { stream_id: theirs, description: 'mine now' }],
      ['DELETE', `/ssf/streams?stream_id=${theirs}`, undefined],
      ['GET', `/ssf/status?stream_id=${theirs}`, undefined],
      ['POST', '/ssf/status', { stream_id: theirs, status: 'disabled' }],
      ['POST', '/ssf/verify', { stream_id: theirs }],
      [
        'POST',
        '/ssf/subjects:remove',
        { stream_id: theirs, subject: { format: 'opaque', id: 'u' } },
      ],
    ] as const) {
      const answer = await fixture.call(method, path, { headers: other, body });
      expect([method, path, answer.status, answer.body.error]).toEqual([
        method,
        path,
        404,
        'not_found',
      ]);
    }
    expect((await fixture.call('GET', '/ssf/streams', { headers: other })).body).toEqual([]);
    const mine = await fixture.call('GET', `/ssf/status?stream_id=${theirs}`);
    expect(mine.body).toEqual({ stream_id: theirs, status: 'enabled' });
    await fixture.call('DELETE', `/ssf/streams?stream_id=${theirs}`);
  });

  it('refuses bad status, subject, verification and poll requests: 400', async () => {
    const stream = await pushStream();
    for (const [path, body] of [
      ['/ssf/status', { stream_id: stream, status: 'sleeping' }],
      [
        '/ssf/subjects:add',
        { stream_id: stream, subject: { format: 'email', email: 'a@example.com' } },
      ],
      ['/ssf/subjects:add', { stream_id: stream }],
      ['/ssf/verify', { stream_id: stream, state: 42 }],
      [`/ssf/poll/${stream}`, { maxEvents: 1 }], // a push stream
      ['/ssf/verify', {}],
    ] as const) {
      const answer = await fixture.call('POST', path, { body });
      expect([path, answer.status, answer.body.error]).toEqual([path, 400, 'invalid_request']);
    }
    expect((await fixture.call('GET', '/ssf/streams?stream_id=nope')).status).toBe(404);
    await fixture.call('DELETE', `/ssf/streams?stream_id=${stream}`);
  });
});

describe('streams', () => {
  it('reads, updates (PATCH), replaces (PUT), lists and deletes a stream', async () => {
    const id = await pushStream({ description: 'first' });
    const patched = await fixture.call('PATCH', '/ssf/streams', {
      body: { stream_id: id, description: 'second' },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({
      stream_id: id,
      description: 'second',
      delivery: { method: DELIVERY_PUSH, endpoint_url: receiver.url },
    });
    const replaced = await fixture.call('PUT', '/ssf/streams', {
      body: {
        stream_id: id,
        delivery: { method: DELIVERY_POLL },
        events_requested: [SESSION_REVOKED],
      },
    });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toEqual({
      stream_id: id,
      iss: fixture.url,
      aud: CLIENTS[0].audience,
      events_supported: [SESSION_REVOKED],
      events_requested: [SESSION_REVOKED],
      events_delivered: [SESSION_REVOKED],
      delivery: { method: DELIVERY_POLL, endpoint_url: `${fixture.url}/ssf/poll/${id}` },
    });
    expect((await fixture.call('GET', `/ssf/streams?stream_id=${id}`)).body).toEqual(replaced.body);
    const list = (await fixture.call('GET', '/ssf/streams')).body as unknown as {
      stream_id: string;
    }[];
    expect(list.map((s) => s.stream_id)).toContain(id);
    expect((await fixture.call('DELETE', `/ssf/streams?stream_id=${id}`)).status).toBe(204);
    expect((await fixture.call('GET', `/ssf/streams?stream_id=${id}`)).status).toBe(404);
  });
});

describe('delivery control', () => {
  let stream: string;
  beforeAll(async () => {
    stream = await pushStream();
  });
  afterAll(async () => {
    await fixture.call('DELETE', `/ssf/streams?stream_id=${stream}`);
  });

  it('holds events while paused and delivers them, in order, on resume', async () => {
    expect((await setStatus(stream, 'paused')).body).toEqual({
      stream_id: stream,
      status: 'paused',
    });
    const events = [revocation('pat'), revocation('pat'), revocation('pat', null)];
    await fixture.produce(events);
    await sleep(1_500);
    expect(receiver.txns().filter((txn) => events.some((e) => e.jti === txn))).toEqual([]);
    expect((await setStatus(stream, 'enabled')).status).toBe(200);
    await eventually('the held events', () => events.every((e) => receiver.txns().includes(e.jti)));
    expect(receiver.txns().filter((txn) => events.some((e) => e.jti === txn))).toEqual(
      events.map((e) => e.jti),
    );
  });

  it('drops events while disabled', async () => {
    await setStatus(stream, 'disabled');
    const dropped = revocation('dina');
    await fixture.produce([dropped]);
    await sleep(1_000);
    await setStatus(stream, 'enabled');
    const kept = revocation('dina');
    await fixture.produce([kept]);
    await eventually('the event after enabling', () => receiver.txns().includes(kept.jti));
    expect(receiver.txns()).not.toContain(dropped.jti);
  });

  it('sends a verification event with the given state through the stream', async () => {
    const answer = await fixture.call('POST', '/ssf/verify', {
      body: { stream_id: stream, state: 'state-123' },
    });
    expect(answer.status).toBe(204);
    const verification = await eventually('the verification event', () =>
      receiver.received.find(
        ({ claims }) => (claims.events as Record<string, unknown>)[SSF_VERIFICATION],
      ),
    );
    expect(verification.claims).toMatchObject({
      iss: fixture.url,
      aud: CLIENTS[0].audience,
      sub_id: { format: 'opaque', id: stream },
      events: { [SSF_VERIFICATION]: { state: 'state-123' } },
    });
  });

  it('skips removed subjects, and delivers them again once added', async () => {
    const subject = { format: 'opaque', id: 'quiet-user' };
    expect(
      (await fixture.call('POST', '/ssf/subjects:remove', { body: { stream_id: stream, subject } }))
        .status,
    ).toBe(204);
    const skipped = revocation('quiet-user');
    const other = revocation('loud-user');
    await fixture.produce([skipped, other]);
    await eventually('the other user’s event', () => receiver.txns().includes(other.jti));
    await sleep(300);
    expect(receiver.txns()).not.toContain(skipped.jti);
    expect(
      (await fixture.call('POST', '/ssf/subjects:add', { body: { stream_id: stream, subject } }))
        .status,
    ).toBe(200);
    const delivered = revocation('quiet-user');
    await fixture.produce([delivered]);
    await eventually('the added subject’s event', () => receiver.txns().includes(delivered.jti));
  });
});

describe('poll delivery (RFC 8936) and restarts', () => {
  it('returns SETs until acknowledged, and a crash and restart neither loses nor re-delivers', async () => {
    const created = await fixture.call('POST', '/ssf/streams', {
      body: { delivery: { method: DELIVERY_POLL } },
    });
    const poll = (created.body.delivery as { endpoint_url: string }).endpoint_url.replace(
      fixture.url,
      '',
    );
    const pushed = await pushStream();
    const before = [1, 2, 3, 4, 5].map(() => revocation('polly'));
    await fixture.produce(before);

    const first = await eventually('five SETs to poll', async () => {
      const answer = await fixture.call('POST', poll, {
        body: { maxEvents: 10, returnImmediately: true },
      });
      return Object.keys(answer.body.sets as object).length === 5 && answer.body;
    });
    const jtis = Object.keys(first.sets as object);
    const txns = Object.values(first.sets as Record<string, string>).map(
      (set) => decodeJwt(set).txn,
    );
    expect(txns).toEqual(before.map((e) => e.jti));
    // Acknowledge three: the other two come again, and nothing else.
    const second = await fixture.call('POST', poll, {
      body: { ack: jtis.slice(0, 3), maxEvents: 2, returnImmediately: true },
    });
    expect(Object.keys(second.body.sets as object)).toEqual(jtis.slice(3));
    expect(second.body.moreAvailable).toBe(false);
    await eventually('the pushed stream got the five', () =>
      before.every((e) => receiver.txns().includes(e.jti)),
    );
    await sleep(300); // the 202s recorded: those SETs are out of the queue

    await fixture.stopTransmitter({ crash: true });
    const during = [1, 2, 3].map(() => revocation('polly'));
    await fixture.produce(during);
    await fixture.startTransmitter();

    const third = await eventually('the unacknowledged two and the three new', async () => {
      const answer = await fixture.call('POST', poll, {
        body: { maxEvents: 10, returnImmediately: true },
      });
      return Object.keys(answer.body.sets as object).length >= 5 && answer.body;
    });
    const sets = third.sets as Record<string, string>;
    expect(Object.keys(sets).slice(0, 2)).toEqual(jtis.slice(3));
    expect(
      Object.values(sets)
        .map((set) => decodeJwt(set).txn)
        .slice(2),
    ).toEqual(during.map((e) => e.jti));
    const done = await fixture.call('POST', poll, {
      body: { ack: Object.keys(sets), returnImmediately: true },
    });
    expect(done.body).toEqual({ sets: {}, moreAvailable: false });

    await eventually('the pushed stream got the three', () =>
      during.every((e) => receiver.txns().includes(e.jti)),
    );
    await sleep(500);
    const all = [...before, ...during].map((e) => e.jti);
    expect(receiver.txns().filter((txn) => all.includes(txn))).toEqual(all); // once each, in order

    // A long poll waits for the next SET.
    const waiting = fixture.call('POST', poll, { body: { maxEvents: 1 } });
    await sleep(200);
    const late = revocation('polly');
    await fixture.produce([late]);
    const answer = await waiting;
    expect(
      Object.values(answer.body.sets as Record<string, string>).map((s) => decodeJwt(s).txn),
    ).toEqual([late.jti]);
    await fixture.call('DELETE', `/ssf/streams?stream_id=${pushed}`);
  });
});

// Push delivery (RFC 8935) of revocations from the real topic to two receivers: A verifies
// every SET against the discovered JWKS and gets every revocation as published, in order per
// user, on time; B is down for 30 s (first refusing connections, then answering 503) and then
// gets everything it missed, in order, while A was not delayed by it.
import { SESSION_REVOKED, type RevocationEvent } from '@app/contracts';
import { eventually } from '@app/testing';
import { setTimeout as sleep } from 'node:timers/promises';
import { auth, CLIENTS, revocation, SsfFixture, TestReceiver } from './ssf-fixture';

jest.setTimeout(120_000);

const fixture = new SsfFixture();
let receiverA: TestReceiver;
let receiverB: TestReceiver;

beforeAll(async () => {
  await fixture.start();
  const discovery = await fixture.call('GET', '/.well-known/ssf-configuration', { headers: {} });
  const { issuer, jwks_uri } = discovery.body as { issuer: string; jwks_uri: string };
  receiverA = await TestReceiver.start(issuer, jwks_uri, CLIENTS[0].audience);
  receiverB = await TestReceiver.start(issuer, jwks_uri, CLIENTS[1].audience);
  for (const [receiver, client] of [
    [receiverA, CLIENTS[0]],
    [receiverB, CLIENTS[1]],
  ] as const) {
    const created = await fixture.call('POST', '/ssf/streams', {
      headers: auth(client),
      body: {
        events_requested: [SESSION_REVOKED],
        delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: receiver.url },
      },
    });
    expect(created.status).toBe(201);
  }
});

afterAll(async () => {
  await receiverA.close();
  await receiverB.close();
  await fixture.stop();
});

/** What a receiver must have got for `event`: its subject and CAEP claims, unchanged. */
function expectDeliveredAsPublished(receiver: TestReceiver, events: RevocationEvent[]) {
  const byTxn = new Map(receiver.received.map(({ claims }) => [claims.txn, claims]));
  for (const event of events) {
    const { subject, ...caep } = event.events[SESSION_REVOKED];
    expect(byTxn.get(event.jti)).toMatchObject({
      sub_id: subject,
      events: { [SESSION_REVOKED]: caep },
    });
  }
}

/** Each user's SETs arrived in the order the user's events were published. */
function expectInOrderPerUser(receiver: TestReceiver, events: RevocationEvent[]) {
  const userOf = new Map(
    events.map((event) => [event.jti, event.events[SESSION_REVOKED].subject.user.id]),
  );
  const arrived = receiver.txns().filter((txn) => userOf.has(txn));
  for (const user of new Set(userOf.values())) {
    const published = events.filter((e) => userOf.get(e.jti) === user).map((e) => e.jti);
    expect(arrived.filter((txn) => userOf.get(txn) === user)).toEqual(published);
  }
}

it('delivers every revocation to A on time while B is down for 30 s, then B gets all it missed, in order per user', async () => {
  await receiverB.close(); // connections refused for the first half of the outage
  const outageStarted = Date.now();
  const published: RevocationEvent[] = [];
  const publishedAt = new Map<string, number>();
  const users = ['alice', 'bob', 'carol', 'dave', 'erin'];
  let round = 0;
  while (Date.now() - outageStarted < 30_000) {
    if (round === 10) {
      await receiverB.listen(); // the second half: up, but answering 503
      receiverB.mode = 'unavailable';
    }
    const events = users.map((user, index) =>
      revocation(user, (round + index) % 4 === 0 ? null : `${user}-s${round}`),
    );
    await fixture.produce(events);
    for (const event of events) publishedAt.set(event.jti, Date.now());
    published.push(...events);
    round += 1;
    await sleep(1_000);
  }
  receiverB.mode = 'up';
  const outageEnded = Date.now();

  // A got everything, each within a few seconds of its publication: B's outage never held it.
  await eventually(
    'A received every revocation',
    () => receiverA.txns().length >= published.length,
  );
  const delays = receiverA.received.map(
    ({ claims, at }) => at - publishedAt.get(String(claims.txn))!,
  );
  expect(Math.max(...delays)).toBeLessThan(3_000);
  expect(receiverA.received.filter(({ at }) => at < outageEnded).length).toBeGreaterThanOrEqual(
    published.length - users.length,
  );
  expect(receiverA.problems).toEqual([]);
  expect(receiverA.txns()).toHaveLength(published.length); // none twice
  expectDeliveredAsPublished(receiverA, published);
  expectInOrderPerUser(receiverA, published);
  for (const { claims } of receiverA.received) {
    expect(claims).toMatchObject({ iss: fixture.url, aud: CLIENTS[0].audience });
    expect(typeof claims.jti).toBe('string');
    expect(typeof claims.iat).toBe('number');
  }
  // A logout everywhere is a user-wide subject: no session.
  const userWide = published.find((event) => !event.events[SESSION_REVOKED].subject.session)!;
  const set = receiverA.received.find(({ claims }) => claims.txn === userWide.jti)!;
  expect(set.claims.sub_id).toEqual({
    format: 'complex',
    user: { format: 'opaque', id: userWide.events[SESSION_REVOKED].subject.user.id },
  });

  // B got nothing while down, then everything it missed, in order per user.
  await eventually(
    'B received everything it missed',
    () => new Set(receiverB.txns()).size >= published.length,
    { timeoutMs: 20_000 },
  );
  expect(receiverB.received.every(({ at }) => at >= outageEnded - 50)).toBe(true);
  expect(receiverB.problems).toEqual([]);
  expectDeliveredAsPublished(receiverB, published);
  expectInOrderPerUser(receiverB, published);
  expect(receiverB.received[0]!.claims.aud).toBe(CLIENTS[1].audience);
  const metrics = await (await fetch(`${fixture.url}/metrics`)).text();
  expect(metrics).toMatch(/ssf_push_total\{outcome="failed"[^}]*\} [1-9]/);
  expect(metrics).toMatch(/ssf_events_consumed_total\{kind="revocation"[^}]*\} [1-9]/);
});

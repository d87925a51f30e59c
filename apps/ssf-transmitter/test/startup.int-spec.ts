// The transmitter started before the revocation topic exists (the publisher provisions it):
// not ready meanwhile, then ready and delivering once the topic appears, with no restart.
import { eventually } from '@app/testing';
import { CLIENTS, revocation, SsfFixture, TestReceiver } from './ssf-fixture';

jest.setTimeout(60_000);

const fixture = new SsfFixture();
let receiver: TestReceiver | undefined;

afterAll(async () => {
  await receiver?.close();
  await fixture.stop();
});

it('waits for the topic, unready, and then delivers', async () => {
  const started = fixture.startTransmitter();
  await eventually('the transmitter answering', async () => {
    const ready = await fetch(`${fixture.url}/health/ready`).catch(() => undefined);
    return ready?.status === 503;
  });
  await fixture.createTopic();
  await started;
  receiver = await TestReceiver.start(fixture.url, `${fixture.url}/jwks.json`, CLIENTS[0].audience);
  const created = await fixture.call('POST', '/ssf/streams', {
    body: { delivery: { method: 'urn:ietf:rfc:8935', endpoint_url: receiver.url } },
  });
  expect(created.status).toBe(201);
  const event = revocation('late-topic-user');
  await fixture.produce([event]);
  await eventually('the revocation delivered', () => receiver?.txns().includes(event.jti));
  expect(receiver.problems).toEqual([]);
});

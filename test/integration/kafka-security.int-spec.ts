import { randomBytes } from 'node:crypto';
import {
  AclOperationTypes,
  AclPermissionTypes,
  AclResourceTypes,
  Kafka,
  logLevel,
  ResourcePatternTypes,
  type AclEntry,
} from 'kafkajs';
import { deadLetterTopic, encodeHeartbeat } from '@app/contracts';
import type { KafkaHandle } from '../../scripts/kafka/kafka.ts';
import { RevocationSystem } from '../e2e/revocation-system';

// Kafka with TLS and SASL/SCRAM-SHA-512 and ACLs: the system works end to end with the
// credentials and ACLs docs/ARCHITECTURE.md lists; a client without credentials is refused,
// and an API instance's credentials cannot write to the revocation topic (no forged
// heartbeats or revocations).

const password = () => randomBytes(18).toString('base64url');
const users = { admin: password(), publisher: password(), api: password() };

/** The ACLs of docs/ARCHITECTURE.md ("Kafka with TLS and SASL"). */
function aclsFor(topic: string): AclEntry[] {
  const allow = (
    principal: string,
    resourceType: AclResourceTypes,
    resourceName: string,
    operation: AclOperationTypes,
    resourcePatternType = ResourcePatternTypes.LITERAL,
  ): AclEntry => ({
    principal: `User:${principal}`,
    host: '*',
    resourceType,
    resourceName,
    resourcePatternType,
    operation,
    permissionType: AclPermissionTypes.ALLOW,
  });
  const { TOPIC, GROUP } = AclResourceTypes;
  const { CREATE, DESCRIBE, WRITE, READ } = AclOperationTypes;
  return [
    // The publisher creates both topics, writes revocations, heartbeats and dead letters.
    ...[topic, deadLetterTopic(topic)].flatMap((name) =>
      [CREATE, DESCRIBE, WRITE].map((operation) => allow('publisher', TOPIC, name, operation)),
    ),
    // API instances read the topic in groups of their own, and park what they cannot read.
    allow('api', TOPIC, topic, READ),
    allow('api', TOPIC, topic, DESCRIBE),
    allow('api', TOPIC, deadLetterTopic(topic), WRITE),
    allow('api', TOPIC, deadLetterTopic(topic), DESCRIBE),
    ...['content-api', 'account-api'].map((service) =>
      allow('api', GROUP, `${service}.revocations.`, READ, ResourcePatternTypes.PREFIXED),
    ),
  ];
}

function client(kafka: KafkaHandle, security: object): Kafka {
  return new Kafka({
    clientId: 'security-test',
    brokers: [kafka.brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2_000,
    retry: { retries: 0 },
    ...security,
  });
}

describe('Kafka with TLS, SASL/SCRAM and ACLs (a broker of its own)', () => {
  const system = new RevocationSystem({
    kafkaSecurity: { users, tls: true },
    apisPerService: 1,
    prepareKafka: async (kafka, topic) => {
      const admin = client(kafka, kafka.clientSecurity('admin')).admin();
      await admin.connect();
      try {
        await admin.createAcls({ acl: aclsFor(topic) });
      } finally {
        await admin.disconnect();
      }
    },
  });

  beforeAll(async () => {
    await system.start();
  });

  afterAll(async () => {
    await system.stop();
  });

  it('works end to end: a logout is enforced by the API instances', async () => {
    const phone = await system.signIn('alice', 'alice-pass', 'phone');
    const laptop = await system.signIn('alice', 'alice-pass', 'laptop');
    await system.expectEverywhere('accepted', [phone, laptop]);
    expect((await system.as(phone, 'POST', '/auth/logout')).status).toBe(204);
    await system.expectEverywhere('rejected', [phone]);
    await system.expectEverywhere('accepted', [laptop]);
  });

  it('refuses a client without credentials', async () => {
    const anonymous = client(system.kafka, {
      ssl: system.kafka.clientSecurity('api').ssl,
    }).admin();
    await expect(
      anonymous.connect().then(() => anonymous.fetchTopicMetadata({ topics: [system.topic] })),
    ).rejects.toThrow();
    await anonymous.disconnect().catch(() => undefined);
  });

  it("refuses to let an API instance's credentials write to the revocation topic", async () => {
    const producer = client(system.kafka, system.kafka.clientSecurity('api')).producer();
    await producer.connect();
    try {
      const forged = encodeHeartbeat(
        { publisher_id: 'forger', sent_at: Date.now(), interval_ms: 1000, partitions: 12 },
        0,
      );
      await expect(producer.send({ topic: system.topic, messages: [forged] })).rejects.toThrow(
        /authoriz/i,
      );
    } finally {
      await producer.disconnect();
    }
  });
});

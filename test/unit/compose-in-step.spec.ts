import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { APPS, devIdpIssuer, root, wiringEnv } from '../../scripts/system.ts';
import { clusterSettings, kraftClusterId, singleNodeSettings } from '../../scripts/kafka/kafka.ts';
import { redisClusterSettings } from '../../scripts/redis/redis.ts';

// docker-compose.yml cannot run here (no Docker engine); this keeps it in step with the
// local launcher, which is what the tests exercise.

interface Service {
  image?: string;
  environment?: Record<string, string>;
  ports?: string[];
  command?: string[];
  depends_on?: Record<string, { condition: string }>;
}
interface Compose {
  services: Record<string, Service>;
}

const read = (file: string) =>
  parse(readFileSync(join(root, file), 'utf8'), { merge: true }) as Compose;
const compose = read('docker-compose.yml');

/** `docker compose -f docker-compose.yml -f <file>`: services merged key by key, as Compose does. */
function layered(file: string): Compose {
  const over = read(file);
  const services = { ...compose.services };
  for (const [name, service] of Object.entries(over.services)) {
    const base = services[name] ?? {};
    services[name] = {
      ...base,
      ...service,
      environment: { ...base.environment, ...service.environment },
      depends_on: { ...base.depends_on, ...service.depends_on },
    };
  }
  return { services };
}
const pom = readFileSync(join(root, 'scripts/kafka/pom.xml'), 'utf8');

describe('docker-compose.yml and the local launcher agree', () => {
  const kafka = compose.services.kafka!;

  it('runs the Kafka version the launcher resolves from Maven', () => {
    const version = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)?.[1];
    expect(version).toMatch(/^4\./);
    expect(kafka.image).toBe(`apache/kafka:${version}`);
  });

  it('gives the broker the same single-node settings', () => {
    for (const [key, value] of Object.entries(singleNodeSettings)) {
      const variable = `KAFKA_${key.replaceAll('.', '_').toUpperCase()}`;
      expect({ variable, value: kafka.environment?.[variable] }).toEqual({ variable, value });
    }
    expect(kafka.environment?.KAFKA_HEAP_OPTS).toContain('-Xmx512m');
  });

  it('runs every app on the same default port, listening only on loopback on the host', () => {
    for (const app of APPS) {
      const service = compose.services[app.name];
      expect(service?.environment?.APP).toBe(app.name);
      expect(service?.environment?.HTTP_PORT).toBe(String(app.port));
      expect(service?.ports?.[0]).toMatch(
        new RegExp(`^127\\.0\\.0\\.1:${app.port}(-\\d+)?:${app.port}$`),
      );
    }
  });

  it('wires the apps to each other with the variables the launcher sets', () => {
    const issuer = compose.services['session-service']?.environment?.ISSUER;
    expect(issuer).toBeDefined();
    for (const app of APPS) {
      const service = compose.services[app.name]!;
      const wired = wiringEnv(app.name, app.name, {
        brokers: 'kafka:29092',
        redisUrl: 'redis://redis:6379',
        sessionServiceUrl: 'http://session-service:3000',
        upstreams: {
          content: ['http://content-api:3100'],
          account: ['http://account-api:3200'],
          session: ['http://session-service:3000'],
        },
        gatewayOrigins: ['http://localhost:8080'],
        gatewayClientSecret: 'a secret of the deployment',
        devIdpUrl: 'http://dev-idp.localhost:4000',
        idpClientSecret: 'another secret of the deployment',
        ssfUrl: 'http://127.0.0.1:3500',
        ssfToken: 'a third secret of the deployment',
      });
      for (const variable of Object.keys(wired).filter((name) => name !== 'INSTANCE_ID'))
        expect({
          app: app.name,
          variable,
          set: service.environment?.[variable] !== undefined,
        }).toEqual({ app: app.name, variable, set: true });
      if (app.scalable) {
        // The API services and the gateway verify the session service's tokens.
        expect(service.environment?.TOKEN_ISSUER).toBe(issuer);
        expect(service.environment?.JWKS_URL).toBe(
          'http://session-service:3000/.well-known/jwks.json',
        );
      }
    }
  });

  it("gives the gateway the session service's client secret, every API service and the session service", () => {
    const session = compose.services['session-service']!.environment!;
    const gateway = compose.services.gateway!.environment!;
    const clients = JSON.parse(session.OAUTH_CLIENTS ?? '[]') as { client_id: string }[];
    expect(clients).toContainEqual({
      client_id: gateway.GATEWAY_CLIENT_ID,
      client_secret: gateway.GATEWAY_CLIENT_SECRET,
    });
    const upstreams = Object.keys(JSON.parse(gateway.GATEWAY_UPSTREAMS ?? '{}') as object);
    expect(upstreams.sort()).toEqual(['account', 'content', 'session']);
  });
  it('makes the dev OpenID provider one issuer for the browser, the gateway and the session service', () => {
    const idp = compose.services['dev-idp']!.environment!;
    const session = compose.services['session-service']!.environment!;
    const gateway = compose.services.gateway!.environment!;
    const issuer = idp.DEV_IDP_ISSUER ?? '';
    // A *.localhost name: loopback for browsers, the provider's network alias for the apps.
    expect(new URL(issuer).hostname).toMatch(/\.localhost$/);
    expect(gateway.GATEWAY_OIDC_ISSUER).toBe(issuer);
    expect(JSON.parse(session.OIDC_ISSUERS ?? '[]')).toEqual([devIdpIssuer(issuer)]);
    const [client] = JSON.parse(idp.DEV_IDP_CLIENTS ?? '[]') as Record<string, unknown>[];
    expect(client).toMatchObject({
      client_id: gateway.GATEWAY_OIDC_CLIENT_ID,
      client_secret: gateway.GATEWAY_OIDC_CLIENT_SECRET,
      backchannel_logout_uri: 'http://session-service:3000/oidc/backchannel-logout',
    });
    const origins = (gateway.GATEWAY_ALLOWED_ORIGINS ?? '').split(',');
    expect(client?.redirect_uris).toEqual(origins.map((origin) => `${origin}/bff/callback`));
  });
});

describe("docker-compose.cluster.yml and the launcher's cluster topology agree", () => {
  const cluster = layered('docker-compose.cluster.yml');
  const kafkaNodes = ['kafka', 'kafka-2', 'kafka-3'].map((name) => cluster.services[name]!);
  const redisNodes = ['redis', 'redis-2', 'redis-3', 'redis-4', 'redis-5', 'redis-6'];

  it('runs three Kafka nodes in one quorum with the cluster settings of startKafkaCluster', () => {
    const ids = kafkaNodes.map((node) => node.environment?.KAFKA_NODE_ID);
    expect(ids).toEqual(['1', '2', '3']);
    for (const node of kafkaNodes) {
      expect(node.image).toBe(compose.services.kafka?.image);
      expect(node.environment?.CLUSTER_ID).toBe(kafkaNodes[0]?.environment?.CLUSTER_ID);
      expect(node.environment?.KAFKA_CONTROLLER_QUORUM_VOTERS).toBe(
        '1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093',
      );
      for (const [key, value] of Object.entries(clusterSettings)) {
        const variable = `KAFKA_${key.replaceAll('.', '_').toUpperCase()}`;
        expect({ variable, value: node.environment?.[variable] }).toEqual({ variable, value });
      }
    }
  });

  it('runs six Redis nodes with the settings of startRedisCluster, joined as 3 primaries with a replica each', () => {
    for (const name of redisNodes) {
      const command = cluster.services[name]?.command ?? [];
      for (const [key, value] of Object.entries(redisClusterSettings))
        expect({ name, key, value: command[command.indexOf(`--${key}`) + 1] }).toEqual({
          name,
          key,
          value,
        });
    }
    const create = (cluster.services['redis-cluster']?.command ?? []).join('\n');
    expect(create).toContain('--cluster-replicas 1');
    for (const name of redisNodes) expect(create).toContain(` ${name}`);
  });

  it('wires every app that uses Kafka or Redis to the three brokers and the Redis Cluster, once it has formed', () => {
    const internal = kafkaNodes.map(
      (node) =>
        /INTERNAL:\/\/([^,]+)/.exec(node.environment?.KAFKA_ADVERTISED_LISTENERS ?? '')?.[1],
    );
    for (const app of APPS.filter((a) => a.name !== 'dev-idp')) {
      const service = cluster.services[app.name]!;
      expect({ app: app.name, brokers: service.environment?.KAFKA_BROKERS }).toEqual({
        app: app.name,
        brokers: internal.join(','),
      });
      const seeds = (service.environment?.REDIS_CLUSTER_NODES ?? '').split(',');
      expect(seeds.length).toBeGreaterThan(0);
      for (const seed of seeds) expect(redisNodes).toContain(seed.replace(/:6379$/, ''));
      expect(service.depends_on?.['redis-cluster']).toEqual({
        condition: 'service_completed_successfully',
      });
    }
  });

  it('has the publisher create the revocation topic on 3 replicas, 2 in sync for a write to count', () => {
    const publisher = cluster.services['revocation-publisher']?.environment;
    expect(publisher?.TOPIC_REPLICATION_FACTOR).toBe(clusterSettings['default.replication.factor']);
    expect(publisher?.TOPIC_MIN_INSYNC_REPLICAS).toBe(clusterSettings['min.insync.replicas']);
  });
});

describe('kraftClusterId', () => {
  it('never starts with a dash, which the storage tool would read as an option', () => {
    for (let i = 0; i < 2_000; i += 1)
      expect(kraftClusterId()).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{21}$/);
  });
});

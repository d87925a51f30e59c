import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { envDocs, envTable, httpEnv, kafkaEnv, redisEnv, type VariableDoc } from '@app/config';
import { revocationGuardEnv } from '@app/revocation-guard';
import { format, resolveConfig } from 'prettier';
import { sessionServiceEnv } from '../../apps/session-service/src/config';
import { revocationPublisherEnv } from '../../apps/revocation-publisher/src/config';
import { gatewayEnv } from '../../apps/gateway/src/config';
import { ssfEnv } from '../../apps/ssf-transmitter/src/config';
import { devIdpEnv } from '../../apps/dev-idp/src/config';
import { root } from '../../scripts/system.ts';

// The README's configuration tables are made from the apps' environment schemas: a variable
// added, renamed or given another default without the README following fails here.
// `npm run docs:config` writes them.

const readmePath = join(root, 'README.md');
const keys = (schema: { shape: object }) => Object.keys(schema.shape);
const common = [...keys(httpEnv(0)), ...keys(redisEnv), ...keys(kafkaEnv)];

const SECTIONS: Record<string, { variables: VariableDoc[]; defaults?: Record<string, string> }> = {
  'every-app': {
    variables: envDocs(httpEnv(0)),
    defaults: { HTTP_PORT: '3000, 3001, 3100, 3200, 3500, 4000, 8080' },
  },
  kafka: { variables: envDocs(kafkaEnv) },
  redis: { variables: envDocs(redisEnv) },
  'session-service': { variables: envDocs(sessionServiceEnv, common) },
  'revocation-publisher': { variables: envDocs(revocationPublisherEnv, common) },
  'revocation-guard': { variables: envDocs(revocationGuardEnv, common) },
  gateway: {
    variables: envDocs(gatewayEnv, [...common, ...keys(revocationGuardEnv)]),
  },
  'ssf-transmitter': { variables: envDocs(ssfEnv, common) },
  'dev-idp': { variables: envDocs(devIdpEnv, common) },
};

const marker = (name: string) => ({
  start: `<!-- config:${name} (made by npm run docs:config) -->`,
  end: `<!-- /config:${name} -->`,
});

async function expectedReadme(readme: string): Promise<string> {
  const options = { ...(await resolveConfig(readmePath)), filepath: readmePath };
  let text = readme;
  for (const [name, { variables, defaults }] of Object.entries(SECTIONS)) {
    const { start, end } = marker(name);
    const from = text.indexOf(start);
    const to = text.indexOf(end);
    if (from === -1 || to === -1) throw new Error(`README.md has no section ${start} … ${end}`);
    const table = (await format(envTable(variables, defaults), options)).trim();
    text = `${text.slice(0, from + start.length)}\n\n${table}\n\n${text.slice(to)}`;
  }
  return format(text, options);
}

describe("README's configuration tables", () => {
  it('describe every variable of every app', () => {
    for (const [section, { variables }] of Object.entries(SECTIONS))
      for (const { name, description } of variables)
        expect({ section, name, described: Boolean(description) }).toEqual({
          section,
          name,
          described: true,
        });
  });

  it('are the ones the schemas make', async () => {
    const readme = readFileSync(readmePath, 'utf8');
    const expected = await expectedReadme(readme);
    if (process.env.WRITE_CONFIG_DOCS) writeFileSync(readmePath, expected);
    else expect(readme).toBe(expected);
  });
});

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, StopWaiting, uniqueName } from '@app/testing';
import { freePort, freePortRun } from '../../scripts/lib/process.ts';

// `npm run stack` as a user runs it: its own Kafka and Redis, every app as a process,
// two instances of each API service; every app ready; SIGTERM leaves nothing behind.

interface StackState {
  processes: { name: string; url: string; pid: number | null }[];
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm run stack (launcher as a separate process)', () => {
  let stack: ChildProcess | undefined;
  let output = '';

  afterAll(async () => {
    // On failure, stop the stack the way a user would, so its broker does not outlive the run.
    const running = (): boolean =>
      stack !== undefined && stack.exitCode === null && stack.signalCode === null;
    if (!running()) return;
    const exited = new Promise((resolve) => stack?.once('exit', resolve));
    stack?.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 45_000).unref())]);
    if (running()) stack?.kill('SIGKILL');
  });

  it('starts Kafka, Redis and every app with API_INSTANCES=2 and GATEWAY_INSTANCES=2, wired together, and SIGTERM stops them all', async () => {
    const dataDir = join(process.env.TEST_DATA_DIR ?? '/tmp', uniqueName('stack'));
    const stateFile = join(dataDir, 'state.json');
    // Two consecutive ports per API service and gateway (the second instance takes the next
    // port), found free together and below the range outgoing connections draw from.
    const [kafkaPort, redisPort, session, publisher, idp, ssf] = await Promise.all(
      Array.from({ length: 6 }, () => freePort()),
    );
    const content = await freePortRun(6);
    const [account, gateway] = [content + 2, content + 4];
    stack = spawn(
      process.execPath,
      ['--disable-warning=TimeoutNegativeWarning', 'scripts/stack.ts'],
      {
        env: {
          ...process.env,
          KAFKA_BROKERS: '',
          REDIS_URL: '',
          API_INSTANCES: '2',
          GATEWAY_INSTANCES: '2',
          KAFKA_PORT: String(kafkaPort),
          REDIS_PORT: String(redisPort),
          SESSION_SERVICE_PORT: String(session),
          REVOCATION_PUBLISHER_PORT: String(publisher),
          CONTENT_API_PORT: String(content),
          ACCOUNT_API_PORT: String(account),
          GATEWAY_PORT: String(gateway),
          DEV_IDP_PORT: String(idp),
          SSF_TRANSMITTER_PORT: String(ssf),
          STACK_DATA_DIR: dataDir,
          STACK_STATE_FILE: stateFile,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    stack.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    stack.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => stack?.once('exit', resolve));

    const state = await eventually(
      'the stack to report ready',
      () => {
        if (stack?.exitCode !== null) throw new StopWaiting(`stack exited early:\n${output}`);
        return existsSync(stateFile)
          ? (JSON.parse(readFileSync(stateFile, 'utf8')) as StackState)
          : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 250 },
    );

    const apps = state.processes.filter((p) => p.url.startsWith('http'));
    expect(apps.map((p) => p.name).sort()).toEqual([
      'account-api-1',
      'account-api-2',
      'content-api-1',
      'content-api-2',
      'dev-idp',
      'gateway-1',
      'gateway-2',
      'revocation-publisher',
      'session-service',
      'ssf-transmitter',
    ]);
    expect(apps.map((p) => p.url)).toContain(`http://127.0.0.1:${content + 1}`);
    for (const app of apps) {
      const response = await fetch(`${app.url}/health/ready`);
      expect({ app: app.name, status: response.status }).toEqual({ app: app.name, status: 200 });
    }
    expect(output).toContain('Stack ready');
    // Federation: the dev provider and the SSF transmitter answer as the stack says.
    expect(output).toContain(`Sign in with Dev IdP`);
    expect(output).toMatch(/management client "ssf-demo", Authorization: Bearer \S+/);
    const providers = await fetch(`${apps.find((p) => p.name === 'gateway-1')!.url}/bff/providers`);
    expect(await providers.json()).toEqual([
      expect.objectContaining({
        name: 'Dev IdP',
        login_url: expect.stringContaining('/bff/login/oidc'),
      }),
    ]);
    const ssfUrl = apps.find((p) => p.name === 'ssf-transmitter')!.url;
    const discovery = (await (await fetch(`${ssfUrl}/.well-known/ssf-configuration`)).json()) as {
      issuer: string;
    };
    expect(discovery.issuer).toBe(`http://127.0.0.1:${ssf}`);

    // The pieces are wired to each other: a demo user signs in at one gateway (a cookie
    // session), reads through the other, and signs out with a second session at the session
    // service; the publisher relays that logout-all from the outbox to Kafka, and both
    // gateways refuse the cookie.
    const url = (name: string) => apps.find((p) => p.name === name)!.url;
    const bff = await fetch(`${url('gateway-1')}/bff/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf': '1' },
      body: JSON.stringify({ username: 'alice', password: 'alice-pass', device: { name: 'web' } }),
    });
    expect(bff.status).toBe(200);
    const cookie = bff.headers.getSetCookie()[0]!.split(';')[0]!;
    const me = (gatewayName: string) =>
      fetch(`${url(gatewayName)}/api/content/me`, { headers: { cookie, 'x-csrf': '1' } });
    expect((await me('gateway-2')).status).toBe(200);

    const login = await fetch(`${url('session-service')}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: 'alice-pass', device: { name: 'e2e' } }),
    });
    expect(login.status).toBe(200);
    const { access_token } = (await login.json()) as { access_token: string };
    const logout = await fetch(`${url('session-service')}/auth/logout-all`, {
      method: 'POST',
      headers: { authorization: `Bearer ${access_token}` },
    });
    expect(logout.status).toBe(204);
    await eventually('the publisher to relay the logout', async () => {
      const metrics = await (await fetch(`${url('revocation-publisher')}/metrics`)).text();
      return /^publisher_events_published_total\{[^}]*\} [1-9]/m.test(metrics) ? true : undefined;
    });
    for (const gatewayName of ['gateway-1', 'gateway-2'])
      await eventually(`${gatewayName} to refuse the cookie`, async () =>
        (await me(gatewayName)).status === 401 ? true : undefined,
      );

    const pids = state.processes.map((p) => p.pid).filter((pid): pid is number => pid !== null);
    expect(pids).toHaveLength(12); // Kafka, Redis, ten apps
    stack.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(pids.filter(isRunning)).toEqual([]);
  });
});

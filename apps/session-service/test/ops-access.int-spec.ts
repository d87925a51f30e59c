import { startSessionApp, type SessionApp } from './session-app';

// With OPS_TOKEN set (production), /metrics, /docs and the details of /health/ready need it
// as a bearer token; load balancers still get /health/live and /health/ready's status.

describe('operations endpoints behind OPS_TOKEN', () => {
  let app: SessionApp;
  const OPS_TOKEN = 'ops-token-for-the-test-0123456789';

  beforeAll(async () => {
    app = await startSessionApp({ OPS_TOKEN });
  });

  afterAll(async () => {
    await app.close();
  });

  const get = (path: string, token?: string) =>
    fetch(`${app.url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  it('refuses /metrics and /docs without the token, serves them with it', async () => {
    for (const path of ['/metrics', '/docs', '/docs-json']) {
      const refused = await get(path);
      expect({ path, status: refused.status }).toEqual({ path, status: 401 });
      expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect({ path, status: (await get(path, 'wrong-token')).status }).toEqual({
        path,
        status: 401,
      });
      expect({ path, status: (await get(path, OPS_TOKEN)).status }).toEqual({ path, status: 200 });
    }
  });

  it('answers /health/ready with its status only, and the details with the token', async () => {
    const open = await get('/health/ready');
    expect(open.status).toBe(200);
    expect(await open.json()).toEqual({ status: 'ok' });
    const detailed = (await (await get('/health/ready', OPS_TOKEN)).json()) as Record<
      string,
      unknown
    >;
    expect(detailed).toMatchObject({ status: 'ok', info: { redis: { status: 'up' } } });
    expect((await get('/health/live')).status).toBe(200);
  });
});

import { sessionAppPerFile } from './session-app';

// Every key the session service writes expires or is deleted once it can no longer matter:
// refreshing a session does not pile up keys, and an ended session leaves none behind.
// What stays is configuration (a user's plan) and the outbox, which the publisher drains.

describe('Redis keys of a session (real Redis)', () => {
  const file = sessionAppPerFile();

  /** Every key under the app's prefix with its time to live (-1: none). */
  async function keysWithTtl(): Promise<Map<string, number>> {
    const keys = await file.app.redis.keys(`${file.app.prefix}*`);
    const ttls = await Promise.all(keys.map((key) => file.app.redis.pttl(key)));
    return new Map(keys.map((key, i) => [key.slice(file.app.prefix.length), ttls[i] ?? -2]));
  }
  const isOutbox = (key: string) => /^\{o\d+\}:outbox$/.test(key);
  const isPlan = (key: string) => /:plan$/.test(key);
  const isShardIndex = (key: string) => /^\{o\d+\}:expiries$/.test(key);

  it('1,000 refreshes leave as many keys as one; ending the session leaves none of its keys', async () => {
    const login = await file.call('POST', '/auth/login', {
      body: { username: 'alice', password: 'alice-pass', device: { name: 'phone' } },
    });
    const sessionId = String(login.body.session_id);
    const afterLogin = await keysWithTtl();
    let refreshToken = String(login.body.refresh_token);
    let accessToken = String(login.body.access_token);
    for (let i = 0; i < 1_000; i += 1) {
      const refreshed = await file.call('POST', '/auth/refresh', {
        body: { refresh_token: refreshToken },
      });
      expect(refreshed.status).toBe(200);
      refreshToken = String(refreshed.body.refresh_token);
      accessToken = String(refreshed.body.access_token);
    }
    const afterRefreshes = await keysWithTtl();
    // Rate-limit counters come and go with their windows; everything else is as after sign-in.
    const stateKeys = (keys: Map<string, number>) =>
      [...keys.keys()].filter((key) => !key.startsWith('rate:')).sort();
    expect(stateKeys(afterRefreshes)).toEqual(stateKeys(afterLogin));
    // While the session lives, each of its keys expires by itself at the latest at its deadline.
    for (const [key, ttl] of afterRefreshes) {
      if (isOutbox(key) || isShardIndex(key)) continue;
      expect({ key, expires: ttl > 0 }).toEqual({ key, expires: true });
    }

    expect((await file.call('POST', '/auth/logout', { token: accessToken })).status).toBe(204);
    const afterEnd = await keysWithTtl();
    for (const [key, ttl] of afterEnd) {
      expect(key).not.toContain(sessionId);
      expect(key).not.toMatch(/^\{o\d+\}:refresh:/);
      if (isOutbox(key) || isPlan(key)) continue;
      expect({ key, expires: ttl > 0 }).toEqual({ key, expires: true });
    }
  });

  it("an opaque-token session: each opaque token's key expires with its JWT, and ending the session deletes them all", async () => {
    const login = await file.call('POST', '/auth/login', {
      body: {
        username: 'alice',
        password: 'alice-pass',
        device: { name: 'kiosk' },
        token_format: 'opaque',
      },
    });
    expect(login.status).toBe(200);
    const sessionId = String(login.body.session_id);
    let refreshToken = String(login.body.refresh_token);
    let accessToken = String(login.body.access_token);
    for (let i = 0; i < 5; i += 1) {
      const refreshed = await file.call('POST', '/auth/refresh', {
        body: { refresh_token: refreshToken },
      });
      expect(refreshed.status).toBe(200);
      refreshToken = String(refreshed.body.refresh_token);
      accessToken = String(refreshed.body.access_token);
    }
    const isOpaqueKey = (key: string) => /^\{o\d+\}:at:[0-9a-f]{64}$/.test(key);
    const during = await keysWithTtl();
    const opaque = [...during].filter(([key]) => isOpaqueKey(key));
    // One key per token issued (each lives until its own JWT expires, at most the access TTL).
    expect(opaque).toHaveLength(6);
    for (const [key, ttl] of during) {
      if (isOutbox(key) || isShardIndex(key) || isPlan(key)) continue;
      expect({ key, expires: ttl > 0 }).toEqual({ key, expires: true });
    }
    for (const [key, ttl] of opaque)
      expect({ key, ttl: ttl <= 300_000 + 5_000 }).toEqual({ key, ttl: true });

    expect((await file.call('POST', '/auth/logout', { token: accessToken })).status).toBe(204);
    const afterEnd = await keysWithTtl();
    for (const [key, ttl] of afterEnd) {
      expect(key).not.toContain(sessionId);
      expect(isOpaqueKey(key)).toBe(false);
      if (isOutbox(key) || isPlan(key)) continue;
      expect({ key, expires: ttl > 0 }).toEqual({ key, expires: true });
    }
  });

  it('"log out everywhere" leaves no key of the ended sessions, and its instant expires', async () => {
    const devices = [];
    for (const name of ['phone', 'laptop', 'tv']) {
      const login = await file.call('POST', '/auth/login', {
        body: { username: 'bob', password: 'bob-pass', device: { name } },
      });
      devices.push(login.body);
    }
    await file.call('POST', '/auth/refresh', {
      body: { refresh_token: devices[0]!.refresh_token },
    });
    expect(
      (await file.call('POST', '/auth/logout-all', { token: String(devices[1]!.access_token) }))
        .status,
    ).toBe(204);
    const after = await keysWithTtl();
    for (const [key, ttl] of after) {
      for (const device of devices) expect(key).not.toContain(String(device.session_id));
      expect(key).not.toMatch(/^\{o\d+\}:refresh:/);
      expect(key).not.toMatch(/user:bob:sessions/);
      if (isOutbox(key) || isPlan(key)) continue;
      expect({ key, expires: ttl > 0 }).toEqual({ key, expires: true });
    }
  });
});

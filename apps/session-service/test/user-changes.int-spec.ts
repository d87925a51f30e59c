import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, startOidcIssuer, type TestOidcIssuer } from '@app/testing';
import { decodeJwt } from 'jose';
import { PasswordHasher } from '../src/identity/password-hasher';
import { oidcUserId } from '../src/identity/user-directory';
import { client, outbox, startSessionApp, type SessionApp } from './session-app';

// Roles and a user's existence are not frozen at sign-in: every refresh looks the user up
// again. Changing USERS_FILE needs no restart; a removed or disabled user's next refresh ends
// the session (with its event), a demoted admin's next token has no admin role.

describe('refresh re-checks the user (real Redis, a users file that changes)', () => {
  let dir: string;
  let file: string;
  let issuer: TestOidcIssuer;
  let app: SessionApp;
  let call: ReturnType<typeof client>;
  const fast = { N: 2 ** 10, r: 8, p: 1 };
  const hasher = new PasswordHasher();
  const users: Record<string, unknown>[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'users-file-'));
    file = join(dir, 'users.json');
    issuer = await startOidcIssuer();
    for (const [id, roles] of [
      ['carol', ['user', 'admin']],
      ['dave', ['user']],
      ['erin', ['user']],
    ] as const) {
      users.push({ id, username: id, password_hash: await hasher.hash(`${id}-pass`, fast), roles });
    }
    await writeFile(file, JSON.stringify(users));
    app = await startSessionApp({
      USERS_FILE: file,
      USERS_FILE_RELOAD_SECONDS: '1',
      OIDC_ISSUERS: JSON.stringify([
        { issuer: issuer.issuer, jwks_uri: issuer.jwksUri, audience: issuer.audience },
      ]),
    });
    call = client(app);
  });

  afterAll(async () => {
    await app.close();
    await issuer.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const login = async (username: string) => {
    const answer = await call('POST', '/auth/login', {
      body: { username, password: `${username}-pass`, device: { name: 'phone' } },
    });
    return answer;
  };
  const refresh = (token: unknown) =>
    call('POST', '/auth/refresh', { body: { refresh_token: String(token) } });

  it('a demoted admin loses the role at the next refresh; removed and disabled users lose the session', async () => {
    const carol = (await login('carol')).body;
    const dave = (await login('dave')).body;
    const erin = (await login('erin')).body;
    const oidc = (
      await call('POST', '/auth/oidc', {
        body: { id_token: await issuer.sign({ sub: 'ext-9' }), device: { name: 'tablet' } },
      })
    ).body;
    expect(decodeJwt(String(carol.access_token)).roles).toEqual(['user', 'admin']);

    // The operator demotes carol, removes dave, disables erin and the OIDC user.
    await writeFile(
      file,
      JSON.stringify([
        { ...users[0], roles: ['user'] },
        { ...users[2], disabled: true },
        { id: oidcUserId(issuer.issuer, 'ext-9'), disabled: true },
      ]),
    );
    const daveRefresh = await eventually('the users file to be read again', async () => {
      const answer = await refresh(dave.refresh_token);
      return answer.status === 401 ? answer : undefined;
    });
    expect(daveRefresh.body).toMatchObject({ error: 'invalid_grant' });

    const carolRefresh = await refresh(carol.refresh_token);
    expect(carolRefresh.status).toBe(200);
    const demoted = String(carolRefresh.body.access_token);
    expect(decodeJwt(demoted).roles).toEqual(['user']);
    expect((await call('GET', '/admin/users/dave/sessions', { token: demoted })).status).toBe(403);

    expect((await refresh(erin.refresh_token)).status).toBe(401);
    expect((await refresh(oidc.refresh_token)).status).toBe(401);

    // Each of those sessions ended with its revocation event.
    const ended = new Map((await outbox(app)).map((r) => [r.sessionId, r.reason]));
    expect(ended.get(String(dave.session_id))).toBe('user_removed');
    expect(ended.get(String(erin.session_id))).toBe('user_disabled');
    expect(ended.get(String(oidc.session_id))).toBe('user_disabled');
    expect(ended.has(String(carol.session_id))).toBe(false);

    // And none of them signs in again.
    expect((await login('dave')).status).toBe(401);
    expect((await login('erin')).status).toBe(401);
    const again = await call('POST', '/auth/oidc', {
      body: { id_token: await issuer.sign({ sub: 'ext-9' }), device: { name: 'tablet' } },
    });
    expect(again.status).toBe(403);
    expect(again.body).toMatchObject({ error: 'access_denied' });
  });

  it('a users file that no longer parses is ignored: the users from before stay', async () => {
    await writeFile(file, '[{"id": "broken"');
    await new Promise((resolve) => setTimeout(resolve, 2_500)); // two reload intervals
    expect((await login('carol')).status).toBe(200);
    // The next good version is read again.
    await writeFile(file, JSON.stringify([users[1]]));
    await eventually('carol to be gone', async () =>
      (await login('carol')).status === 401 ? true : undefined,
    );
    expect((await login('dave')).status).toBe(200);
  });
});

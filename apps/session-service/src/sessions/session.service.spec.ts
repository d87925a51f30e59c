import {
  ConflictException,
  HttpException,
  NotFoundException,
  UnauthorizedException,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { decodeJwt } from 'jose';
import { Registry } from 'prom-client';
import { InMemorySessionRepository } from '../../test/in-memory-session.repository';
import { CONFORMANCE_RULES, ended } from '../../test/session-repository.conformance';
import type { IdentityEnv } from '../identity/identity.env';
import { PasswordHasher } from '../identity/password-hasher';
import { UserDirectory } from '../identity/user-directory';
import type { PasswordUserRecord } from '../identity/user-records';
import type { Clock } from '../tokens/clock';
import { SigningKeys } from '../tokens/signing-keys';
import { TokenService } from '../tokens/token.service';
import type { TokensEnv } from '../tokens/tokens.env';
import { SessionMetrics } from './session.metrics';
import { SessionService } from './session.service';
import type { SignIn } from './session.types';

// SessionService on the in-memory repository (held to the Redis store's conformance suite):
// what the service adds to the store's rules, namely the HTTP errors, the tokens it signs, the
// user looked up again at each refresh, and what it counts.

const ISSUER = CONFORMANCE_RULES.issuer;
const TTL_SECONDS = 300;

class TestClock implements Clock {
  constructor(public ms = Date.UTC(2030, 0, 1, 12, 0, 0, 250)) {}
  now(): number {
    return this.ms;
  }
}

const record = (id: string, roles: string[], disabled = false): PasswordUserRecord => ({
  id,
  username: id,
  // Never verified here: no sign-in by password goes through these specs.
  password_hash:
    'scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g',
  roles,
  ...(disabled ? { disabled } : {}),
});

async function setup() {
  const clock = new TestClock();
  const repository = new InMemorySessionRepository(CONFORMANCE_RULES);
  const tokens = new TokenService(
    await SigningKeys.generate(),
    new ConfigService<TokensEnv, true>({
      ISSUER,
      ACCESS_TOKEN_AUDIENCE: ['apis'],
      ACCESS_TOKEN_TTL_SECONDS: TTL_SECONDS,
    }),
    clock,
  );
  const registry = new Registry();
  const users = new UserDirectory(
    new PasswordHasher(),
    [record('alice', ['user']), record('bob', ['user', 'admin'])],
    new ConfigService<IdentityEnv, true>({}),
  );
  const service = new SessionService(
    repository,
    tokens,
    new SessionMetrics(registry),
    users,
    clock,
  );
  const signIn = (userId: string, extra: Partial<SignIn> = {}) =>
    service.signIn(
      { userId, roles: ['user'], device: { name: 'phone' }, remember: false, ...extra },
      'password',
    );
  /** The value of a counter (with these labels), 0 when never counted. */
  const counted = async (name: string, labels: Record<string, string> = {}) => {
    const metric = await registry.getSingleMetric(name)?.get();
    const value = metric?.values.find((v) =>
      Object.entries(labels).every(([k, l]) => v.labels[k] === l),
    );
    return value?.value ?? 0;
  };
  const events = () => repository.events.map(ended);
  return { clock, repository, service, users, signIn, counted, events };
}

/** The response body of the HTTP error `promise` rejects with, checked to be of `type`. */
async function refusal(promise: Promise<unknown>, type: new (...args: never[]) => HttpException) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(type);
  return (error as HttpException).getResponse() as Record<string, unknown>;
}

describe('SessionService', () => {
  it('signs in: an access token for the session, bound to its absolute deadline, and a refresh token', async () => {
    const { clock, signIn, counted } = await setup();
    const response = await signIn('alice', { roles: ['user', 'beta'] });
    expect(response).toMatchObject({ token_type: 'Bearer', expires_in: TTL_SECONDS });
    expect(response.refresh_token).toMatch(/^rt\d+_/);
    const claims = decodeJwt(response.access_token);
    expect(claims).toMatchObject({
      iss: ISSUER,
      sub: 'alice',
      sid: response.session_id,
      roles: ['user', 'beta'],
      iat: Math.floor(clock.ms / 1000),
      exp: Math.floor(clock.ms / 1000) + TTL_SECONDS,
    });
    expect(await counted('session_sign_ins_total', { method: 'password' })).toBe(1);
  });

  it('opaque format: an at_ token standing for the JWT, at sign-in and at every refresh', async () => {
    const { clock, service, signIn } = await setup();
    const response = await signIn('alice', { tokenFormat: 'opaque' });
    expect(response).toMatchObject({ token_type: 'Bearer', expires_in: TTL_SECONDS });
    expect(response.access_token).toMatch(/^at_[A-Za-z0-9_-]{43}\.\d+$/);
    const first = await service.resolveOpaqueToken(response.access_token);
    expect(first).toMatchObject({ sessionId: response.session_id, userId: 'alice' });
    expect(decodeJwt(first!.jwt)).toMatchObject({
      sub: 'alice',
      sid: response.session_id,
      exp: Math.floor(clock.ms / 1000) + TTL_SECONDS,
    });
    clock.ms += 30_000;
    const refreshed = await service.refresh(response.refresh_token);
    expect(refreshed.access_token).toMatch(/^at_/);
    expect(refreshed.access_token).not.toBe(response.access_token);
    const next = await service.resolveOpaqueToken(refreshed.access_token);
    expect(decodeJwt(next!.jwt).iat).toBe(Math.floor(clock.ms / 1000));
    await service.logout(response.session_id);
    expect(await service.resolveOpaqueToken(response.access_token)).toBeUndefined();
    expect(await service.resolveOpaqueToken(refreshed.access_token)).toBeUndefined();
  });

  it('a token never outlives its session: exp is capped at the absolute deadline', async () => {
    const { clock, service, signIn } = await setup();
    const deadline = Math.floor((clock.ms + CONFORMANCE_RULES.absoluteMs) / 1000);
    let { refresh_token } = await signIn('alice');
    // Refreshed within every idle timeout until a minute before the absolute deadline.
    while (clock.ms / 1000 < deadline - 60) {
      clock.ms += Math.min(50_000, (deadline - 60) * 1000 - clock.ms);
      ({ refresh_token } = await service.refresh(refresh_token));
    }
    const last = await service.refresh(refresh_token);
    expect(decodeJwt(last.access_token).exp).toBe(deadline);
    expect(last.expires_in).toBe(60);
  });

  it('at a reject limit: 409 device_limit_reached with the live sessions, counted', async () => {
    const { service, signIn, counted } = await setup();
    await service.setPlan('alice', { max_devices: 1, policy: 'reject' });
    const first = await signIn('alice');
    const body = await refusal(signIn('alice'), ConflictException);
    expect(body.error).toBe('device_limit_reached');
    expect((body.sessions as { session_id: string }[]).map((s) => s.session_id)).toEqual([
      first.session_id,
    ]);
    expect(await counted('session_device_limit_rejections_total')).toBe(1);
  });

  it('evictions at an evict_oldest limit are counted', async () => {
    const { service, signIn, counted, events } = await setup();
    await service.setPlan('alice', { max_devices: 1, policy: 'evict_oldest' });
    const first = await signIn('alice');
    await signIn('alice');
    expect(await counted('session_device_limit_evictions_total')).toBe(1);
    expect(events()).toMatchObject([{ session: first.session_id, reason: 'device_limit' }]);
  });

  it('an ID token used twice: 401 invalid_id_token', async () => {
    const { clock, signIn } = await setup();
    const idToken = { use: 'jti-1', until: clock.ms + 60_000 };
    await signIn('oidc-abc', { idToken });
    const body = await refusal(signIn('oidc-abc', { idToken }), UnauthorizedException);
    expect(body.error).toBe('invalid_id_token');
  });

  it('back-channel logout: ends with system / "signed out at the identity provider", counted; a later sign-in of that provider session is 401', async () => {
    const { service, signIn, counted, events } = await setup();
    const provider = { issuer: 'https://idp.example', sub: 'ext-1', sid: 'idp-sid-1' };
    const first = await signIn('oidc-x', { provider });
    const other = await signIn('oidc-x', { provider: { ...provider, sid: 'idp-sid-2' } });
    expect(await service.endProviderSessions({ issuer: provider.issuer, sid: 'idp-sid-1' })).toBe(
      1,
    );
    expect(events()).toEqual([
      expect.objectContaining({
        user: 'oidc-x',
        session: first.session_id,
        initiator: 'system',
        reason: 'signed out at the identity provider',
      }),
    ]);
    expect(await service.ownerOf(other.session_id)).toBe('oidc-x');
    expect(await counted('session_revocations_total', { reason: 'idp_logout' })).toBe(1);
    const body = await refusal(signIn('oidc-x', { provider }), UnauthorizedException);
    expect(body).toMatchObject({ error: 'invalid_id_token' });
  });

  it('refresh: a new pair for the same session, with the roles the user has now', async () => {
    const { clock, service, users, signIn, counted } = await setup();
    const first = await signIn('bob', { roles: ['user', 'admin'] });
    clock.ms += 30_000;
    users.replace([record('alice', ['user']), record('bob', ['user'])]); // demoted
    const next = await service.refresh(first.refresh_token);
    expect(next.session_id).toBe(first.session_id);
    expect(next.refresh_token).not.toBe(first.refresh_token);
    expect(decodeJwt(next.access_token)).toMatchObject({
      sid: first.session_id,
      roles: ['user'],
      iat: Math.floor(clock.ms / 1000),
    });
    expect(await counted('session_refreshes_total')).toBe(1);
  });

  it('an OIDC user keeps the roles of their sign-in at refresh', async () => {
    const { service, signIn } = await setup();
    const first = await signIn('oidc-xyz', { roles: ['user', 'admin'] });
    const next = await service.refresh(first.refresh_token);
    expect(decodeJwt(next.access_token).roles).toEqual(['user', 'admin']);
  });

  it.each([
    ['removed', [record('bob', ['user'])], 'user_removed'],
    ['disabled', [record('alice', ['user'], true), record('bob', ['user'])], 'user_disabled'],
  ])('refresh of a %s user: 401 invalid_grant, and the session ends', async (_, now, reason) => {
    const { service, users, signIn, events, counted } = await setup();
    const session = await signIn('alice');
    users.replace(now);
    const body = await refusal(service.refresh(session.refresh_token), UnauthorizedException);
    expect(body.error).toBe('invalid_grant');
    expect(events()).toMatchObject([{ user: 'alice', session: session.session_id, reason }]);
    expect(await counted('session_revocations_total', { reason })).toBe(1);
    expect(await service.ownerOf(session.session_id)).toBeUndefined();
  });

  it('a reused refresh token: 401 invalid_grant (nothing more said), the session ends, counted', async () => {
    const { clock, service, signIn, events, counted } = await setup();
    const session = await signIn('alice');
    await service.refresh(session.refresh_token);
    clock.ms += CONFORMANCE_RULES.graceMs + 1;
    const body = await refusal(service.refresh(session.refresh_token), UnauthorizedException);
    expect(body).toEqual({
      error: 'invalid_grant',
      error_description: 'refresh token is not valid',
    });
    expect(events()).toMatchObject([{ reason: 'refresh_token_reuse' }]);
    expect(await counted('session_refresh_reuse_total')).toBe(1);
  });

  it("ending one's own session; someone else's is a 404, as if it did not exist", async () => {
    const { service, signIn, events, counted } = await setup();
    const alices = await signIn('alice');
    const body = await refusal(service.endOwn('bob', alices.session_id), NotFoundException);
    expect(body.error).toBe('not_found');
    expect(events()).toEqual([]);
    await service.endOwn('alice', alices.session_id);
    expect(events()).toMatchObject([{ initiator: 'user', reason: 'user_logout' }]);
    expect(await counted('session_revocations_total', { reason: 'user_logout' })).toBe(1);
    await refusal(service.endOwn('alice', alices.session_id), NotFoundException);
  });

  it('an admin ends a session (admin, admin); an unknown one is a 404', async () => {
    const { service, signIn, events } = await setup();
    const session = await signIn('alice');
    await service.endByAdmin(session.session_id);
    expect(events()).toMatchObject([
      { session: session.session_id, initiator: 'admin', reason: 'admin' },
    ]);
    await refusal(service.endByAdmin(session.session_id), NotFoundException);
  });

  it('log out everywhere: reason logout_all by the user, admin by an admin', async () => {
    const { service, signIn, events, counted } = await setup();
    await signIn('alice');
    await signIn('alice');
    expect(await service.logoutAll('alice')).toBe(2);
    expect(await service.logoutAll('alice', 'admin')).toBe(0);
    expect(events()).toMatchObject([
      { user: 'alice', initiator: 'user', reason: 'logout_all' },
      { user: 'alice', initiator: 'admin', reason: 'admin' },
    ]);
    expect(await counted('session_revocations_total', { reason: 'logout_all' })).toBe(1);
  });

  it('a token signed after "log out everywhere" in the same second is stamped after it', async () => {
    const { clock, service, signIn, events } = await setup();
    await service.logoutAll('alice');
    const after = await signIn('alice');
    const [event] = events();
    expect(decodeJwt(after.access_token).iat! * 1000).toBeGreaterThan(event!.at);
    expect(Math.floor(clock.ms / 1000)).toBe(Math.floor(event!.at / 1000));
  });

  it('revoking a refresh token ends its session (token_revoked); an unknown one is no error', async () => {
    const { service, signIn, events } = await setup();
    const session = await signIn('alice');
    const next = await service.refresh(session.refresh_token);
    // Any link of the family names the session.
    await service.revokeRefreshToken(session.refresh_token);
    expect(events()).toMatchObject([{ session: session.session_id, reason: 'token_revoked' }]);
    await expect(service.revokeRefreshToken(next.refresh_token)).resolves.toBeUndefined();
    await expect(service.revokeRefreshToken('not-a-token')).resolves.toBeUndefined();
    expect(events()).toHaveLength(1);
  });

  it('the sweep ends sessions idle past their timeout', async () => {
    const { clock, service, signIn, events } = await setup();
    const session = await signIn('alice');
    clock.ms += CONFORMANCE_RULES.idleMs;
    expect(await service.sweepExpired()).toBe(1);
    expect(events()).toMatchObject([{ session: session.session_id, reason: 'expired' }]);
  });
});

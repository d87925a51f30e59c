import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RedisClient } from '@app/redis';
import { createHash } from 'node:crypto';
import type * as OpenidClient from 'openid-client';
import { cookieSessionOf, type BffDeps } from './bff';
import type { GatewayEnv } from './config';
import type { CookieSessions } from './cookie-sessions';
import { Refusal, unavailable } from './refusal';
import { onBehalfOf, type SessionClient } from './session-client';
import { deviceOf } from './device';
import { newHandle, TokenStore } from './token-store';

/** The cookie binding a browser to its pending code flow (SameSite=Lax: see ARCHITECTURE.md). */
export const FLOW_COOKIE = '__Host-oidc-flow';
/** How long a started sign-in may take at the provider (the flow's Redis entry and cookie). */
export const FLOW_TTL_SECONDS = 600;
/** After a failed discovery, the next request waits this long before trying again. */
const DISCOVERY_RETRY_MS = 1_000;

export interface OidcSettings {
  issuer: string;
  clientId: string;
  clientSecret: string;
  providerName: string;
  scopes: string;
}

/** The OpenID sign-in settings, when GATEWAY_OIDC_ISSUER (and its client) are set. */
export function oidcSettings(
  env: Pick<
    GatewayEnv,
    | 'GATEWAY_OIDC_ISSUER'
    | 'GATEWAY_OIDC_CLIENT_ID'
    | 'GATEWAY_OIDC_CLIENT_SECRET'
    | 'GATEWAY_OIDC_PROVIDER_NAME'
    | 'GATEWAY_OIDC_SCOPES'
  >,
): OidcSettings | undefined {
  const issuer = env.GATEWAY_OIDC_ISSUER;
  const clientId = env.GATEWAY_OIDC_CLIENT_ID;
  const clientSecret = env.GATEWAY_OIDC_CLIENT_SECRET;
  if (issuer === undefined || clientId === undefined || clientSecret === undefined)
    return undefined;
  return {
    issuer,
    clientId,
    clientSecret,
    providerName: env.GATEWAY_OIDC_PROVIDER_NAME ?? new URL(issuer).host,
    scopes: env.GATEWAY_OIDC_SCOPES,
  };
}

type Lib = typeof OpenidClient;
let loading: Promise<Lib> | undefined;
/** openid-client, loaded at first use (an ES module: `require(esm)` in the built app; a
 * gateway without a provider, and specs that only register the routes, never load it). */
const openidClient = (): Promise<Lib> => (loading ??= import('openid-client'));

/**
 * The provider as openid-client knows it: discovered at first use, not at start (the gateway
 * starts and serves password sign-in while the provider is down), and again after a failure,
 * at most once a second. Plain http only as the configuration allows it (loopback, or
 * ALLOW_INSECURE_HTTP).
 */
export class OidcProvider {
  private configuration: Promise<OpenidClient.Configuration> | undefined;
  private failedAt = 0;

  constructor(readonly settings: OidcSettings) {}

  /** openid-client and the provider's configuration. */
  async client(): Promise<{ oidc: Lib; config: OpenidClient.Configuration }> {
    const oidc = await openidClient();
    if (this.configuration === undefined) {
      if (Date.now() - this.failedAt < DISCOVERY_RETRY_MS)
        throw unavailable('the OpenID provider could not be reached, retry shortly');
      const { issuer, clientId, clientSecret } = this.settings;
      this.configuration = oidc.discovery(
        new URL(issuer),
        clientId,
        undefined,
        oidc.ClientSecretBasic(clientSecret),
        {
          // Plain http only where the configuration allowed it: a loopback issuer (the dev
          // provider of the local stack) or ALLOW_INSECURE_HTTP (docker-compose's network).
          // eslint-disable-next-line @typescript-eslint/no-deprecated -- deprecated to stand out, as here
          execute: new URL(issuer).protocol === 'http:' ? [oidc.allowInsecureRequests] : [],
          timeout: 5,
        },
      );
      this.configuration.catch(() => {
        this.configuration = undefined;
        this.failedAt = Date.now();
      });
    }
    try {
      return { oidc, config: await this.configuration };
    } catch {
      throw unavailable('the OpenID provider could not be reached, retry shortly');
    }
  }

  /** The provider's end-session URL for a session signed in with `idToken`, if it has one. */
  async endSessionUrl(idToken: string, postLogoutRedirectUri?: string): Promise<string> {
    const { oidc, config } = await this.client();
    return oidc
      .buildEndSessionUrl(config, {
        id_token_hint: idToken,
        client_id: this.settings.clientId,
        ...(postLogoutRedirectUri !== undefined && {
          post_logout_redirect_uri: postLogoutRedirectUri,
        }),
      })
      .toString();
  }
}

/** A pending code flow, kept in Redis under the gateway's prefix while the user is at the provider. */
interface PendingFlow {
  state: string;
  nonce: string;
  code_verifier: string;
  return_to: string;
  /** The gateway origin the flow started at: its redirect URI is `<origin>/bff/callback`. */
  origin: string;
}

class FlowStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  private key(handle: string): string {
    return `${this.prefix}oidc-flow:${createHash('sha256').update(handle).digest('hex')}`;
  }

  async create(handle: string, flow: PendingFlow): Promise<void> {
    await this.redis.set(this.key(handle), JSON.stringify(flow), 'EX', FLOW_TTL_SECONDS);
  }

  /** The flow, removed as it is read: a callback is used at most once. */
  async take(handle: string): Promise<PendingFlow | undefined> {
    const value = await this.redis.getdel(this.key(handle));
    return value === null ? undefined : (JSON.parse(value) as PendingFlow);
  }
}

/**
 * Why a sign-in through the provider did not end signed in, as the console's `/?sso_error=`
 * (apps/gateway/web/src/sign-in.tsx puts each in words).
 */
export type SsoError =
  | 'flow_missing'
  | 'flow_expired'
  | 'state_mismatch'
  | 'origin_mismatch'
  | 'access_denied'
  | 'provider_error'
  | 'provider_unavailable'
  | 'token_exchange_failed'
  | 'id_token_refused'
  | 'user_disabled'
  | 'device_limit'
  | 'too_many_attempts'
  | 'session_unavailable';

/** `return_to`: a path of this origin, in plain URL characters (no quote, space or backslash). */
const RETURN_TO = /^\/(?![/\\])[A-Za-z0-9\-._~!$&()*+,;=:@%/?#]*$/;

export function safeReturnTo(value: unknown, origin: string): string | undefined {
  if (value === undefined) return '/';
  if (typeof value !== 'string' || value.length > 2_000 || !RETURN_TO.test(value)) return undefined;
  try {
    return new URL(value, origin).origin === origin ? value : undefined;
  } catch {
    return undefined;
  }
}

const htmlEscape = (value: string): string =>
  value.replace(
    /[&<>"']/g,
    (char) =>
      ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char] ?? char,
  );

/**
 * The last step of a sign-in through the provider: a page of this origin that moves on to
 * `return_to` itself. The callback was a cross-site navigation (from the provider), and a
 * SameSite=Strict cookie is not sent on anything in a redirect chain that began cross-site;
 * this page's own navigation is same-site, so the new session cookie goes with it.
 */
function continuePage(returnTo: string): string {
  const target = htmlEscape(returnTo);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${target}">
<title>Signed in</title></head>
<body><p>Signed in. <a href="${target}">Continue</a></p></body></html>`;
}

export interface OidcDeps {
  /** Undefined when no provider is configured: then only `GET /bff/providers` (`[]`) and 404s. */
  provider: OidcProvider | undefined;
  redis: RedisClient | undefined;
  prefix: string;
  env: BffDeps['env'] & Pick<GatewayEnv, 'GATEWAY_ALLOWED_ORIGINS'>;
  store: TokenStore;
  sessions: SessionClient;
  cookies: CookieSessions;
  log?: (message: string, detail: Record<string, unknown>) => void;
}

/** The origin a request came to (its scheme, under TRUST_PROXY, and its Host). */
const originOf = (request: FastifyRequest): string => `${request.protocol}://${request.host}`;

const notConfigured = () =>
  new Refusal(404, {
    error: 'not_found',
    error_description: 'no OpenID provider is configured at this gateway',
  });

/**
 * Single sign-on through the gateway: `GET /bff/providers` (what the console offers),
 * `GET /bff/login/oidc?return_to=/…` (starts the code flow: PKCE, state and nonce, kept in
 * Redis behind the `__Host-oidc-flow` cookie) and `GET /bff/callback` (the provider's answer:
 * the code is exchanged for the ID token, which the session service's `POST /auth/oidc`
 * verifies and turns into a session; the browser gets the session cookie). Failures end at
 * the console with `/?sso_error=<code>`, never a 500.
 */
export function oidcRoutes(fastify: FastifyInstance, deps: OidcDeps): void {
  const { provider, env, store, sessions, cookies } = deps;
  const flows = deps.redis && new FlowStore(deps.redis, deps.prefix);
  const allowedOrigins = new Set(env.GATEWAY_ALLOWED_ORIGINS.map((o) => new URL(o).origin));
  const log = deps.log ?? (() => undefined);

  const setFlowCookie = (reply: FastifyReply, value: string, maxAge: number) =>
    void reply.setCookie(FLOW_COOKIE, value, {
      httpOnly: true,
      secure: true,
      sameSite: 'lax',
      path: '/',
      maxAge,
      ...(maxAge === 0 && { expires: new Date(0) }),
    });

  const failed = (reply: FastifyReply, code: SsoError) =>
    reply
      .code(303)
      .header('cache-control', 'no-store')
      .header('location', `/?sso_error=${code}`)
      .send({ error: code });

  fastify.get('/bff/providers', (_request, reply) =>
    reply
      .header('cache-control', 'no-store')
      .send(
        provider === undefined
          ? []
          : [{ name: provider.settings.providerName, login_url: '/bff/login/oidc' }],
      ),
  );

  fastify.get('/bff/login/oidc', async (request, reply) => {
    if (provider === undefined || flows === undefined) throw notConfigured();
    const origin = originOf(request);
    if (!allowedOrigins.has(origin))
      throw new Refusal(400, {
        error: 'invalid_request',
        error_description: `${origin} is not one of this gateway's origins (GATEWAY_ALLOWED_ORIGINS)`,
      });
    const returnTo = safeReturnTo((request.query as Record<string, unknown>).return_to, origin);
    if (returnTo === undefined)
      throw new Refusal(400, {
        error: 'invalid_request',
        error_description: 'return_to must be a path of this origin, such as /',
      });
    let client;
    try {
      client = await provider.client();
    } catch {
      return failed(reply, 'provider_unavailable');
    }
    const { oidc, config } = client;
    const flow: PendingFlow = {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      code_verifier: oidc.randomPKCECodeVerifier(),
      return_to: returnTo,
      origin,
    };
    const handle = newHandle();
    await flows.create(handle, flow);
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: `${origin}/bff/callback`,
      scope: provider.settings.scopes,
      state: flow.state,
      nonce: flow.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(flow.code_verifier),
      code_challenge_method: 'S256',
    });
    setFlowCookie(reply, handle, FLOW_TTL_SECONDS);
    return reply
      .code(303)
      .header('cache-control', 'no-store')
      .header('location', url.toString())
      .send();
  });

  fastify.get('/bff/callback', async (request, reply) => {
    if (provider === undefined || flows === undefined) throw notConfigured();
    const handle = request.cookies[FLOW_COOKIE];
    if (!TokenStore.isHandle(handle)) return failed(reply, 'flow_missing');
    setFlowCookie(reply, '', 0);
    const flow = await flows.take(handle);
    if (flow === undefined) return failed(reply, 'flow_expired');
    const query = request.query as Record<string, unknown>;
    if (query.state !== flow.state) return failed(reply, 'state_mismatch');
    if (originOf(request) !== flow.origin) return failed(reply, 'origin_mismatch');
    if (typeof query.error === 'string') {
      log('the OpenID provider refused the sign-in', {
        error: query.error,
        error_description: query.error_description,
      });
      return failed(reply, query.error === 'access_denied' ? 'access_denied' : 'provider_error');
    }

    let idToken: string;
    try {
      const { oidc, config } = await provider.client();
      const search = new URL(request.url, flow.origin).search;
      const tokens = await oidc.authorizationCodeGrant(
        config,
        new URL(`${flow.origin}/bff/callback${search}`),
        {
          pkceCodeVerifier: flow.code_verifier,
          expectedState: flow.state,
          expectedNonce: flow.nonce,
          idTokenExpected: true,
        },
      );
      if (tokens.id_token === undefined) throw new Error('no ID token');
      idToken = tokens.id_token;
    } catch (error) {
      log('the code could not be exchanged at the OpenID provider', {
        error: (error as Error).message,
      });
      return failed(reply, 'token_exchange_failed');
    }

    let answer;
    try {
      answer = await sessions.loginWithIdToken(
        {
          id_token: idToken,
          nonce: flow.nonce,
          device: deviceOf(request.headers['user-agent']),
          token_format: 'jwt',
        },
        onBehalfOf(request),
      );
    } catch {
      return failed(reply, 'session_unavailable');
    }
    const body = answer.body;
    if (answer.status !== 200 || body?.session_id === undefined) {
      const byStatus: Record<number, SsoError> = {
        401: 'id_token_refused',
        403: 'user_disabled',
        409: 'device_limit',
        429: 'too_many_attempts',
      };
      log('the session service refused the ID token', { status: answer.status });
      return failed(reply, byStatus[answer.status] ?? 'session_unavailable');
    }
    const session = {
      ...cookieSessionOf({ ...body, session_id: body.session_id }, env.GATEWAY_SESSION_TTL_SECONDS),
      id_token: idToken,
    };
    const sessionHandle = newHandle();
    await store.create(sessionHandle, session);
    cookies.setCookie(reply, sessionHandle, false);
    return reply
      .code(200)
      .header('cache-control', 'no-store')
      .header('content-type', 'text/html; charset=utf-8')
      .send(continuePage(flow.return_to));
  });
}

/**
 * For `POST /bff/logout` of a session signed in through the provider: the provider's
 * end-session URL (its `id_token_hint`, and `post_logout_redirect_uri` = this origin's `/`),
 * or undefined when the provider cannot be reached (the session here is ended anyway).
 */
export async function providerLogoutUrl(
  provider: OidcProvider | undefined,
  idToken: string | undefined,
  request: FastifyRequest,
  allowedOrigins: string[],
): Promise<string | undefined> {
  if (provider === undefined || idToken === undefined) return undefined;
  const origin = request.headers.origin ?? originOf(request);
  const allowed = allowedOrigins.some((o) => new URL(o).origin === origin);
  try {
    return await provider.endSessionUrl(idToken, allowed ? `${origin}/` : undefined);
  } catch {
    return undefined;
  }
}

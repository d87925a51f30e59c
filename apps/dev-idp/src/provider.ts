import { exportJWK, generateKeyPair } from 'jose';
import { randomBytes, randomUUID } from 'node:crypto';
import { Provider, type KoaContextLike } from 'oidc-provider';
import type { Accounts } from './accounts';
import type { DevIdpClient } from './config';
import { errorPage, logoutPage, logoutSuccessPage, PAGE_HEADERS } from './pages';

/** Claims by scope: `openid` gives `sub` and `roles` (an array; admin has "admin"), `profile`
 * gives `preferred_username` and `name`. Put in the ID token too (conformIdTokenClaims off),
 * where the session service reads them. */
export const CLAIMS = {
  openid: ['sub', 'roles'],
  profile: ['preferred_username', 'name'],
} as const;

export interface ProviderSettings {
  issuer: string;
  clients: DevIdpClient[];
  accounts: Accounts;
  sessionTtlSeconds: number;
}

const setPage = (ctx: KoaContextLike, html: string) => {
  for (const [name, value] of Object.entries(PAGE_HEADERS)) ctx.set(name, value);
  ctx.type = 'html';
  ctx.body = html;
};

/**
 * oidc-provider configured for the local stack: the demo users, code flow with PKCE for every
 * client, Back-Channel Logout 1.0 with `sid` in ID and logout tokens, RP-initiated logout with
 * its confirmation page, signing keys made at start (dev only: every restart signs with a new
 * key and forgets its sessions, all in memory).
 */
export async function createProvider({
  issuer,
  clients,
  accounts,
  sessionTtlSeconds,
}: ProviderSettings): Promise<Provider> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = {
    ...(await exportJWK(privateKey)),
    kid: randomUUID(),
    alg: 'RS256',
    use: 'sig',
  };
  const backchannelUris = new Set(
    clients.flatMap((c) =>
      c.backchannel_logout_uri === undefined ? [] : [new URL(c.backchannel_logout_uri).href],
    ),
  );
  const firstParty = new Set(clients.filter((c) => c.first_party).map((c) => c.client_id));

  const provider = new Provider(issuer, {
    clients: clients.map((client) => ({
      client_id: client.client_id,
      client_secret: client.client_secret,
      ...(client.client_name !== undefined && { client_name: client.client_name }),
      redirect_uris: client.redirect_uris,
      post_logout_redirect_uris: client.post_logout_redirect_uris,
      ...(client.backchannel_logout_uri !== undefined && {
        backchannel_logout_uri: client.backchannel_logout_uri,
        backchannel_logout_session_required: true,
      }),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    findAccount(_ctx: unknown, sub: string) {
      const account = accounts.find(sub);
      if (account === undefined) return Promise.resolve(undefined);
      return Promise.resolve({
        accountId: account.id,
        claims: () => ({
          sub: account.id,
          preferred_username: account.username,
          name: account.username,
          roles: account.roles,
        }),
      });
    },
    claims: CLAIMS,
    scopes: ['openid', 'profile'],
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    ttl: {
      Session: sessionTtlSeconds,
      Grant: sessionTtlSeconds,
      Interaction: 600,
      AuthorizationCode: 60,
      AccessToken: 600,
      IdToken: 3600,
    },
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx: KoaContextLike, form: string) => {
          setPage(ctx, logoutPage(ctx.host, form));
        },
        postLogoutSuccessSource: (ctx: KoaContextLike) => {
          setPage(ctx, logoutSuccessPage(ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId));
        },
      },
    },
    /**
     * First-party clients (the gateway) are granted what they ask at once: no consent page
     * for the project's own apps. Others keep the consent prompt (see the interaction routes).
     */
    async loadExistingGrant(ctx: KoaContextLike & { oidc: { client: { clientId: string } } }) {
      const clientId = ctx.oidc.client.clientId;
      const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session.grantIdFor(clientId);
      if (grantId !== undefined) return ctx.oidc.provider.Grant.find(grantId);
      const accountId = ctx.oidc.session.accountId;
      if (!firstParty.has(clientId) || accountId === undefined) return undefined;
      const grant = new ctx.oidc.provider.Grant({ clientId, accountId });
      grant.addOIDCScope('openid profile');
      await grant.save();
      return grant;
    },
    /**
     * oidc-provider's outgoing requests refuse loopback and private addresses (SSRF
     * protection, its own dispatcher). Its only requests here are the back-channel logouts to
     * the configured clients' URIs, which on the local stack are loopback: those go out with
     * the default dispatcher; anything else keeps the protection.
     */
    fetch: (url: string | URL, options: RequestInit & { dispatcher?: unknown }) => {
      if (!backchannelUris.has(new URL(url).href)) return globalThis.fetch(url, options);
      return globalThis.fetch(url, { ...options, dispatcher: undefined });
    },
    renderError: (ctx: KoaContextLike, out: Record<string, unknown>) => {
      setPage(ctx, errorPage(out));
    },
  });
  return provider;
}

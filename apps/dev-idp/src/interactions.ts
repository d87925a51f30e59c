import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Provider } from 'oidc-provider';
import type { Accounts } from './accounts';
import { consentPage, errorPage, loginPage, PAGE_HEADERS } from './pages';

const MAX_FORM_BYTES = 10_000;

async function formBody(req: IncomingMessage): Promise<URLSearchParams> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, PAGE_HEADERS);
  res.end(html);
}

/**
 * The provider's interaction pages (oidc-provider leaves them to the app): `GET
 * /interaction/:uid` shows the login or the consent page for the prompt at hand; `POST
 * …/login` checks the password, `POST …/confirm` grants what the client asked, `POST …/abort`
 * answers the client `access_denied`. Each is bound to its interaction by oidc-provider's
 * own cookie (`_interaction`, SameSite=Lax, path /interaction/:uid).
 */
export function interactionRoutes(provider: Provider, accounts: Accounts) {
  const clientName = async (clientId: unknown): Promise<string> => {
    const client = typeof clientId === 'string' ? await provider.Client.find(clientId) : undefined;
    return client?.clientName ?? client?.clientId ?? 'an application';
  };

  return async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const [, , uid = '', action] = path.split('/');
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch {
      send(
        res,
        400,
        errorPage({
          error: 'this sign-in expired or is unknown: start again from the application',
        }),
      );
      return;
    }
    if (details.uid !== uid) {
      send(res, 400, errorPage({ error: 'this page belongs to another sign-in' }));
      return;
    }
    const client = await clientName(details.params.client_id);

    if (req.method === 'GET' && action === undefined) {
      if (details.prompt.name === 'login') {
        send(res, 200, loginPage({ uid, client }));
        return;
      }
      const account = accounts.find(details.session?.accountId ?? '');
      send(
        res,
        200,
        consentPage({
          uid,
          client,
          username: account?.username ?? '?',
          scopes: details.prompt.details.missingOIDCScope ?? [],
          claims: details.prompt.details.missingOIDCClaims ?? [],
        }),
      );
      return;
    }
    if (req.method !== 'POST') {
      send(res, 405, errorPage({ error: 'method not allowed' }));
      return;
    }

    if (action === 'login' && details.prompt.name === 'login') {
      const form = await formBody(req);
      const username = form.get('username') ?? '';
      const account = await accounts.authenticate(username, form.get('password') ?? '');
      if (account === undefined) {
        send(res, 200, loginPage({ uid, client, username, error: 'Wrong username or password.' }));
        return;
      }
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: account.id } },
        { mergeWithLastSubmission: false },
      );
      return;
    }

    if (action === 'confirm' && details.prompt.name === 'consent') {
      const accountId = details.session?.accountId;
      const clientId = details.params.client_id;
      if (accountId === undefined || typeof clientId !== 'string') {
        send(res, 400, errorPage({ error: 'no session to grant for' }));
        return;
      }
      const grant =
        (details.grantId === undefined ? undefined : await provider.Grant.find(details.grantId)) ??
        new provider.Grant({ accountId, clientId });
      const missing = details.prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {}))
        grant.addResourceScope(indicator, scopes.join(' '));
      const grantId = await grant.save();
      await provider.interactionFinished(
        req,
        res,
        { consent: details.grantId === undefined ? { grantId } : {} },
        { mergeWithLastSubmission: true },
      );
      return;
    }

    if (action === 'abort') {
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'the user cancelled the sign-in' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    send(res, 400, errorPage({ error: 'unexpected step for this sign-in' }));
  };
}

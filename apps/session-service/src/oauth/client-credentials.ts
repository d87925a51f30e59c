import { timingSafeEqual, createHash } from 'node:crypto';
import { UnauthorizedException } from '@nestjs/common';

export interface OAuthClient {
  client_id: string;
  client_secret: string;
}

/** The client authentication methods of RFC 6749 §2.3.1 the token endpoints take. */
export const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post'] as const;

const digest = (value: string) => createHash('sha256').update(value).digest();

/** RFC 6749 §2.3.1: the id and secret are form-encoded before they go into Basic. */
function formDecode(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

/** The credentials of `Authorization: Basic …`, or undefined when it is malformed. */
function basicCredentials(value: string): { id: string; secret: string } | undefined {
  const match = /^Basic ([A-Za-z0-9+/]+={0,2})$/i.exec(value.trim());
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) return undefined;
  try {
    return {
      id: formDecode(decoded.slice(0, colon)),
      secret: formDecode(decoded.slice(colon + 1)),
    };
  } catch {
    return undefined; // broken percent-encoding
  }
}

const refused = () =>
  new UnauthorizedException({
    error: 'invalid_client',
    error_description: 'client authentication failed',
  });

/**
 * Authenticates an RFC 7009 / RFC 7662 caller by HTTP Basic (`client_secret_basic`) or by
 * `client_id` and `client_secret` in the form body (`client_secret_post`), never both
 * (RFC 6749 §2.3); compares secrets in constant time. Anything else, a malformed header
 * included, is 401 `invalid_client` (with a Basic challenge, added by the errors filter).
 */
export function authenticateClient(
  clients: readonly OAuthClient[],
  authorization: string | undefined,
  body: Record<string, unknown>,
): string {
  const inBody = body.client_id !== undefined || body.client_secret !== undefined;
  let credentials: { id: string; secret: string } | undefined;
  if (authorization !== undefined) {
    if (inBody) throw refused();
    credentials = basicCredentials(authorization);
  } else if (typeof body.client_id === 'string' && typeof body.client_secret === 'string') {
    credentials = { id: body.client_id, secret: body.client_secret };
  }
  const client = credentials && clients.find((c) => c.client_id === credentials.id);
  if (
    !client ||
    !credentials ||
    !timingSafeEqual(digest(client.client_secret), digest(credentials.secret))
  )
    throw refused();
  return client.client_id;
}

import { timingSafeEqual, createHash } from 'node:crypto';
import { UnauthorizedException } from '@nestjs/common';

export interface OAuthClient {
  client_id: string;
  client_secret: string;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Authenticates an RFC 7009 / RFC 7662 caller by HTTP Basic (preferred) or `client_id` and
 * `client_secret` in the body; compares secrets in constant time. 401 `invalid_client` otherwise.
 */
export function authenticateClient(
  clients: readonly OAuthClient[],
  authorization: string | undefined,
  body: Record<string, unknown>,
): string {
  let id: string | undefined;
  let secret: string | undefined;
  const basic = authorization ? /^Basic ([A-Za-z0-9+/=]+)$/i.exec(authorization.trim()) : null;
  if (basic?.[1]) {
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0)
      [id, secret] = [
        decodeURIComponent(decoded.slice(0, colon)),
        decodeURIComponent(decoded.slice(colon + 1)),
      ];
  } else if (typeof body.client_id === 'string' && typeof body.client_secret === 'string') {
    [id, secret] = [body.client_id, body.client_secret];
  }
  const client = clients.find((c) => c.client_id === id);
  if (
    !client ||
    secret === undefined ||
    !timingSafeEqual(digest(client.client_secret), digest(secret))
  ) {
    throw new UnauthorizedException({
      error: 'invalid_client',
      error_description: 'client authentication failed',
    });
  }
  return client.client_id;
}

import { Body, Controller, Header, Headers, HttpCode, Inject, Post, Res } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { FastifyReply } from 'fastify';
import { Public } from '../auth/auth.decorators';
import type { SessionServiceEnv } from '../config';
import { tokenBody, type TokenBody } from '../http/schemas';
import { SessionService } from '../sessions/session.service';
import type { OpaqueTokenTarget } from '../sessions/session.types';
import { isOpaqueAccessToken } from '../tokens/opaque-token';
import { TokenService } from '../tokens/token.service';
import { authenticateClient, type OAuthClient } from './client-credentials';

const isRefreshToken = (token: string) => token.startsWith('rt');

/** The media type of an introspection answer that is the access JWT itself (phantom tokens). */
export const JWT_MEDIA_TYPE = 'application/jwt';

/** Whether `Accept` lists `application/jwt` (and does not refuse it with `q=0`). */
function acceptsJwt(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((range) => {
    const [type, ...parameters] = range.split(';').map((part) => part.trim().toLowerCase());
    const q = parameters.find((parameter) => parameter.startsWith('q='));
    return type === JWT_MEDIA_TYPE && (q === undefined || Number(q.slice(2)) > 0);
  });
}

/** RFC 7009 revocation and RFC 7662 introspection, for confidential clients from configuration. */
@Controller('oauth')
@Public()
export class OAuthController {
  private readonly clients: readonly OAuthClient[];

  constructor(
    private readonly sessions: SessionService,
    private readonly tokens: TokenService,
    @Inject(ConfigService) config: ConfigService<SessionServiceEnv, true>,
  ) {
    this.clients = config.get('OAUTH_CLIENTS', { infer: true });
  }

  /** Ends the session behind the token (access or refresh). Always 200, as RFC 7009 asks. */
  @Post('revoke')
  @HttpCode(200)
  async revoke(
    @Body({ schema: tokenBody }) body: TokenBody,
    @Headers('authorization') authorization?: string,
  ): Promise<Record<string, never>> {
    authenticateClient(this.clients, authorization, body);
    if (isRefreshToken(body.token)) {
      await this.sessions.revokeRefreshToken(body.token);
    } else if (isOpaqueAccessToken(body.token)) {
      const target = await this.sessions.resolveOpaqueToken(body.token);
      if (target) await this.sessions.logout(target.sessionId);
    } else {
      const claims = await this.tokens.verifyAccessToken(body.token).catch(() => undefined);
      if (claims) await this.sessions.logout(claims.sid);
    }
    return {};
  }

  /**
   * `active` only for a valid access token of a live session. An opaque access token (phantom
   * token) is active while the JWT it stands for is valid and its session live; asked with
   * `Accept: application/jwt`, the answer is then that JWT itself (`Content-Type:
   * application/jwt`), and `{ "active": false }` as JSON otherwise (RFC 7662).
   */
  @Post('introspect')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  async introspect(
    @Body({ schema: tokenBody }) body: TokenBody,
    @Res({ passthrough: true }) reply: FastifyReply,
    @Headers('authorization') authorization?: string,
    @Headers('accept') accept?: string,
  ): Promise<Record<string, unknown> | string> {
    const clientId = authenticateClient(this.clients, authorization, body);
    if (isRefreshToken(body.token)) return { active: false };
    let opaque: OpaqueTokenTarget | undefined;
    if (isOpaqueAccessToken(body.token)) {
      opaque = await this.sessions.resolveOpaqueToken(body.token);
      if (!opaque) return { active: false };
    }
    const jwt = opaque ? opaque.jwt : body.token;
    const claims = await this.tokens.verifyAccessToken(jwt).catch(() => undefined);
    if (!claims) return { active: false };
    // An opaque token's session was found live just now; a JWT's is looked up.
    const live = opaque
      ? opaque.sessionId === claims.sid && opaque.userId === claims.sub
      : (await this.sessions.ownerOf(claims.sid)) === claims.sub;
    if (!live) return { active: false };
    if (opaque && acceptsJwt(accept)) {
      void reply.header('Content-Type', JWT_MEDIA_TYPE);
      return jwt;
    }
    return { active: true, token_type: 'Bearer', client_id: clientId, ...claims };
  }
}

import { Body, Controller, Headers, HttpCode, Inject, Post } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Public } from '../auth/auth.decorators';
import type { SessionServiceEnv } from '../config';
import { tokenBody, type TokenBody } from '../http/schemas';
import { SessionService } from '../sessions/session.service';
import { TokenService } from '../tokens/token.service';
import { authenticateClient, type OAuthClient } from './client-credentials';

const isRefreshToken = (token: string) => token.startsWith('rt');

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
    } else {
      const claims = await this.tokens.verifyAccessToken(body.token).catch(() => undefined);
      if (claims) await this.sessions.logout(claims.sid);
    }
    return {};
  }

  /** `active` only for a valid access token of a live session (or a live refresh token's session). */
  @Post('introspect')
  @HttpCode(200)
  async introspect(
    @Body({ schema: tokenBody }) body: TokenBody,
    @Headers('authorization') authorization?: string,
  ): Promise<Record<string, unknown>> {
    const clientId = authenticateClient(this.clients, authorization, body);
    if (isRefreshToken(body.token)) return { active: false };
    const claims = await this.tokens.verifyAccessToken(body.token).catch(() => undefined);
    if (!claims || (await this.sessions.ownerOf(claims.sid)) !== claims.sub)
      return { active: false };
    return { active: true, token_type: 'Bearer', client_id: clientId, ...claims };
  }
}

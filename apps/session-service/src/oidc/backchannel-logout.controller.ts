import {
  BadRequestException,
  Body,
  Controller,
  Header,
  HttpCode,
  Logger,
  Post,
  Req,
  ServiceUnavailableException,
} from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { Public } from '../auth/auth.decorators';
import { InvalidLogoutTokenError } from '../identity/logout-token-verifier';
import { MAX_ISSUER_TOKEN_LENGTH } from '../identity/trusted-issuers';
import { SignInThrottle } from '../rate-limit/sign-in-throttle';
import { BackchannelLogout } from './backchannel-logout.service';

export const BACKCHANNEL_LOGOUT_PATH = '/oidc/backchannel-logout';
/** A form holding one logout token of at most 16 KiB, with room to spare. */
const MAX_BODY_BYTES = 32 * 1024;

export const logoutTokenBody = z.object({
  logout_token: z
    .string()
    .min(1)
    .max(MAX_ISSUER_TOKEN_LENGTH)
    .describe('the logout token (a JWT signed by a trusted issuer)'),
});
type LogoutTokenBody = z.output<typeof logoutTokenBody>;

/**
 * The provider's back-channel logout receiver (OpenID Connect Back-Channel Logout 1.0 §2.5-2.8).
 * A public route: the logout token is the credential. It answers from the request alone and
 * never calls this service's own public URL (a receiver that did broke behind proxies).
 */
@Controller('oidc')
@Public()
export class BackchannelLogoutController {
  private readonly logger = new Logger('BackchannelLogout');

  constructor(
    private readonly backchannel: BackchannelLogout,
    private readonly throttle: SignInThrottle,
  ) {}

  @Post('backchannel-logout')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  async logout(
    @Body({ schema: logoutTokenBody }) body: LogoutTokenBody,
    @Req() request: FastifyRequest,
  ): Promise<Record<string, never>> {
    await this.throttle.admitLogoutToken(request.ip);
    try {
      await this.backchannel.logout(body.logout_token);
      return {};
    } catch (error) {
      if (!(error instanceof InvalidLogoutTokenError)) throw error;
      if (error.reason === 'issuer_unavailable') {
        throw new ServiceUnavailableException({
          error: 'temporarily_unavailable',
          error_description: error.message,
          retry_after: 5,
        });
      }
      // The reason only (a fixed code), never the token: a provider misconfigured for us (wrong
      // audience, unknown key) shows up here.
      this.logger.warn(`logout token refused: ${error.reason}`);
      await this.throttle.refusedLogoutToken(request.ip);
      throw new BadRequestException({ error: 'invalid_request', error_description: error.message });
    }
  }
}

/**
 * What the route needs before Nest sees the request: `Cache-Control: no-store` on every answer
 * (errors too), a form body only (§2.5: `application/x-www-form-urlencoded`; anything else is a
 * 400, not parsed), and a small one (a declared length over 32 KiB is a 400 before it is read).
 */
export function guardBackchannelLogout(app: NestFastifyApplication): void {
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRequest', async (request, reply) => {
      const path = request.url.split('?', 1)[0];
      if (request.method !== 'POST' || path !== BACKCHANNEL_LOGOUT_PATH) return;
      void reply.header('Cache-Control', 'no-store');
      const type = (request.headers['content-type'] ?? '').split(';', 1)[0]?.trim().toLowerCase();
      const length = Number(request.headers['content-length'] ?? 0);
      const refusal =
        type !== 'application/x-www-form-urlencoded'
          ? 'the body must be application/x-www-form-urlencoded'
          : length > MAX_BODY_BYTES
            ? 'the body is too large'
            : undefined;
      if (refusal === undefined) return;
      await reply.code(400).send({ error: 'invalid_request', error_description: refusal });
    });
}

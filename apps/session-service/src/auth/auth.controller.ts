import {
  Body,
  Controller,
  ForbiddenException,
  Header,
  HttpCode,
  Post,
  Req,
  ServiceUnavailableException,
  UnauthorizedException,
} from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import {
  loginBody,
  oidcBody,
  refreshBody,
  type LoginBody,
  type OidcBody,
  type RefreshBody,
} from '../http/schemas';
import { InvalidIdTokenError, OidcVerifier } from '../identity/oidc-verifier';
import { UserDirectory } from '../identity/user-directory';
import { SignInThrottle } from '../rate-limit/sign-in-throttle';
import { SessionService, type TokenResponse } from '../sessions/session.service';
import { CurrentCaller, Public, type Caller } from './auth.decorators';

@Controller('auth')
export class AuthController {
  constructor(
    private readonly sessions: SessionService,
    private readonly users: UserDirectory,
    private readonly oidc: OidcVerifier,
    private readonly throttle: SignInThrottle,
  ) {}

  @Public()
  @Post('login')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  async login(
    @Body({ schema: loginBody }) body: LoginBody,
    @Req() request: FastifyRequest,
  ): Promise<TokenResponse> {
    const attempt = { ip: request.ip, username: body.username };
    await this.throttle.admit('login', attempt);
    const user = await this.users.verifyPassword(body.username, body.password);
    if (!user) {
      await this.throttle.failed(attempt);
      throw new UnauthorizedException({
        error: 'invalid_credentials',
        error_description: 'wrong username or password',
      });
    }
    await this.throttle.succeeded(attempt);
    return this.sessions.signIn(
      {
        userId: user.id,
        roles: user.roles,
        device: body.device,
        remember: body.remember,
        tokenFormat: body.token_format,
        replaceSessionId: body.end_session_id,
        ...origin(request),
      },
      'password',
    );
  }

  @Public()
  @Post('oidc')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  async loginWithOidc(
    @Body({ schema: oidcBody }) body: OidcBody,
    @Req() request: FastifyRequest,
  ): Promise<TokenResponse> {
    await this.throttle.admit('oidc', { ip: request.ip });
    try {
      const identity = await this.oidc.verify(body.id_token, body.nonce);
      const user = this.users.fromOidc(identity.issuer, identity.sub, identity.claims);
      if (this.users.standing(user.id).kind === 'disabled') {
        throw new ForbiddenException({
          error: 'access_denied',
          error_description: 'this user is disabled here',
        });
      }
      return await this.sessions.signIn(
        {
          userId: user.id,
          roles: user.roles,
          device: body.device,
          remember: body.remember,
          tokenFormat: body.token_format,
          replaceSessionId: body.end_session_id,
          ...origin(request),
          idToken: { use: identity.use.id, until: identity.use.until },
          provider: { issuer: identity.issuer, sub: identity.sub, sid: identity.sid },
        },
        'oidc',
      );
    } catch (error) {
      if (error instanceof InvalidIdTokenError && error.reason === 'issuer_unavailable') {
        throw new ServiceUnavailableException({
          error: 'temporarily_unavailable',
          error_description: error.message,
          retry_after: 5,
        });
      }
      if (error instanceof InvalidIdTokenError) {
        throw new UnauthorizedException({
          error: 'invalid_id_token',
          error_description: error.message,
        });
      }
      throw error;
    }
  }

  @Public()
  @Post('refresh')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  async refresh(
    @Body({ schema: refreshBody }) body: RefreshBody,
    @Req() request: FastifyRequest,
  ): Promise<TokenResponse> {
    await this.throttle.admit('refresh', { ip: request.ip });
    return this.sessions.refresh(body.refresh_token);
  }

  @Post('logout')
  @HttpCode(204)
  async logout(@CurrentCaller() caller: Caller): Promise<void> {
    await this.sessions.logout(caller.sessionId);
  }

  @Post('logout-all')
  @HttpCode(204)
  async logoutAll(@CurrentCaller() caller: Caller): Promise<void> {
    await this.sessions.logoutAll(caller.userId);
  }
}

function origin(request: FastifyRequest): { userAgent?: string; ip: string } {
  const agent = request.headers['user-agent'];
  return { ip: request.ip, ...(agent ? { userAgent: agent.slice(0, 300) } : {}) };
}

import {
  ForbiddenException,
  Injectable,
  UnauthorizedException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { SessionService } from '../sessions/session.service';
import { bearerToken, InvalidAccessTokenError } from '@app/contracts';
import { isOpaqueAccessToken } from '../tokens/opaque-token';
import { TokenService } from '../tokens/token.service';
import { IS_PUBLIC, REQUIRED_ROLES, type Caller } from './auth.decorators';

interface BearerRequest {
  headers: Record<string, string | string[] | undefined>;
  caller?: Caller;
}

/**
 * The session service's own guard (global): a valid access token (the JWT, or an opaque `at_`
 * token standing for it) of a session that is still live in Redis. Unlike the APIs, this
 * service holds the sessions, so it checks them exactly.
 */
@Injectable()
export class BearerGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: TokenService,
    private readonly sessions: SessionService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC, targets)) return true;
    // No bearer token outside HTTP: refused, never let through unchecked.
    if (context.getType() !== 'http') return false;
    const request = context.switchToHttp().getRequest<BearerRequest>();
    const token = bearerToken(request.headers.authorization);
    if (!token) throw invalidToken('missing bearer token');
    // An opaque access token (phantom token) stands for its JWT while its session is live.
    const jwt = isOpaqueAccessToken(token)
      ? (await this.sessions.resolveOpaqueToken(token))?.jwt
      : token;
    if (jwt === undefined) throw invalidToken('unknown, expired or ended opaque token');
    let caller: Caller;
    try {
      const claims = await this.tokens.verifyAccessToken(jwt);
      caller = { userId: claims.sub, sessionId: claims.sid, roles: claims.roles ?? [] };
    } catch (error) {
      if (error instanceof InvalidAccessTokenError) throw invalidToken(error.message);
      throw error;
    }
    if ((await this.sessions.ownerOf(caller.sessionId)) !== caller.userId)
      throw invalidToken('session ended');
    const required =
      this.reflector.getAllAndOverride<string[] | undefined>(REQUIRED_ROLES, targets) ?? [];
    if (!required.every((role) => caller.roles.includes(role))) {
      throw new ForbiddenException({
        error: 'insufficient_scope',
        error_description: `requires role ${required.join(', ')}`,
      });
    }
    request.caller = caller;
    return true;
  }
}

const invalidToken = (description: string) =>
  new UnauthorizedException({ error: 'invalid_token', error_description: description });

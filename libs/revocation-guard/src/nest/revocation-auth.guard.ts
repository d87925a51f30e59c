import { IS_PUBLIC, REQUIRED_ROLES } from '@app/auth-metadata';
import { HttpException, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { STALE_VIEW_HEADER, type AuthenticatedRequest } from '../middleware';
import { RevocationGuard, rejectionBody, rejectionHeaders } from '../revocation-guard';

/** Both Fastify's reply and Express's response set a header this way. */
interface HeaderSetter {
  header(name: string, value: string): unknown;
}

/**
 * The app-wide guard (APP_GUARD): every route needs a valid, unrevoked access token unless
 * marked `@Public()`; `@Roles(...)` adds role checks (403). Rejections are RFC 6750 answers.
 */
@Injectable()
export class RevocationAuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly guard: RevocationGuard,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC, targets)) return true;
    const roles = this.reflector.getAllAndOverride<string[] | undefined>(REQUIRED_ROLES, targets);
    const http = context.switchToHttp();
    const request = http.getRequest<AuthenticatedRequest & { headers: Record<string, string> }>();
    const outcome = await this.guard.authenticate(request.headers.authorization, roles);
    const response = http.getResponse<HeaderSetter>();
    if (!outcome.ok) {
      for (const [name, value] of Object.entries(rejectionHeaders(outcome)))
        response.header(name, value);
      response.header('cache-control', 'no-store');
      throw new HttpException(rejectionBody(outcome), outcome.status);
    }
    if (outcome.stale) response.header(STALE_VIEW_HEADER, 'true');
    request.auth = outcome.session;
    return true;
  }
}

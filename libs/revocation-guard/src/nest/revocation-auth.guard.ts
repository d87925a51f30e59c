import { IS_PUBLIC, REQUIRED_ROLES } from '@app/auth-metadata';
import { HttpException, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { STALE_VIEW_HEADER, type AuthenticatedRequest } from '../http/middleware';
import type { GuardOutcome } from '../authenticator';
import { RevocationGuard, rejectionBody, rejectionHeaders } from '../revocation-guard';

interface RouteAuth {
  isPublic: boolean;
  roles: string[];
}

/** Both Fastify's reply and Express's response set a header this way. */
interface HeaderSetter {
  header(name: string, value: string): unknown;
}

/**
 * The app-wide guard (APP_GUARD): every route needs a valid, unrevoked access token unless
 * marked `@Public()`; `@Roles(...)` adds role checks (403). Rejections are RFC 6750 answers.
 * Other contexts than HTTP (a hybrid app's RPC or WebSocket handlers) carry no bearer token
 * here: they are refused unless marked `@Public()`, never let through unchecked.
 */
@Injectable()
export class RevocationAuthGuard implements CanActivate {
  /** Per class, then per handler: one handler can serve several controllers (inheritance). */
  private readonly routes = new WeakMap<object, WeakMap<object, RouteAuth>>();

  constructor(
    private readonly reflector: Reflector,
    private readonly guard: RevocationGuard,
  ) {}

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    const route = this.routeOf(context);
    if (route.isPublic) return true;
    if (context.getType() !== 'http') return false;
    const http = context.switchToHttp();
    const request = http.getRequest<AuthenticatedRequest & { headers: Record<string, string> }>();
    const outcome = this.guard.decide(request.headers.authorization, route.roles);
    const finish = (decided: GuardOutcome): boolean => {
      const response = http.getResponse<HeaderSetter>();
      if (!decided.ok) {
        for (const [name, value] of Object.entries(rejectionHeaders(decided)))
          response.header(name, value);
        response.header('cache-control', 'no-store');
        throw new HttpException(rejectionBody(decided), decided.status);
      }
      if (decided.stale) response.header(STALE_VIEW_HEADER, 'true');
      request.auth = decided.session;
      return true;
    };
    return outcome instanceof Promise ? outcome.then(finish) : finish(outcome);
  }

  /** A route's metadata, read once per handler and class instead of on every request. */
  private routeOf(context: ExecutionContext): RouteAuth {
    const [handler, cls] = [context.getHandler(), context.getClass()];
    let byHandler = this.routes.get(cls);
    if (byHandler === undefined) {
      byHandler = new WeakMap();
      this.routes.set(cls, byHandler);
    }
    let route = byHandler.get(handler);
    if (route === undefined) {
      const targets = [handler, cls];
      route = {
        isPublic:
          this.reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC, targets) ?? false,
        roles:
          this.reflector.getAllAndOverride<string[] | undefined>(REQUIRED_ROLES, targets) ?? [],
      };
      byHandler.set(handler, route);
    }
    return route;
  }
}

import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { AuthenticatedRequest } from '../http/middleware';
import type { VerifiedSession } from '../authenticator';

/** The verified session of the request (its access token's claims), set by the guard. */
export const CurrentSession = createParamDecorator(
  (_data: unknown, context: ExecutionContext): VerifiedSession | undefined =>
    context.switchToHttp().getRequest<AuthenticatedRequest>().auth,
);

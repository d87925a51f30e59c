import { createParamDecorator, type ExecutionContext } from '@nestjs/common';

export { IS_PUBLIC, Public, REQUIRED_ROLES, Roles } from '@app/auth-metadata';

/** Who called: set by the bearer guard from a verified token of a live session. */
export interface Caller {
  userId: string;
  sessionId: string;
  roles: string[];
}

export const CurrentCaller = createParamDecorator(
  (_: unknown, context: ExecutionContext): Caller => {
    const request = context.switchToHttp().getRequest<{ caller?: Caller }>();
    if (!request.caller) throw new Error('CurrentCaller used on a public route');
    return request.caller;
  },
);

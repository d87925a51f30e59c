// The revocation guard in a NestJS app: a global guard driven by `@Public()` and `@Roles()`,
// the verified session as `@CurrentSession()`, `GET /me`, and a readiness check.
export { IS_PUBLIC, Public, REQUIRED_ROLES, Roles } from '@app/auth-metadata';
export * from './current-session.decorator';
export * from './me.controller';
export * from './revocation-auth.guard';
export * from './revocation-guard.module';

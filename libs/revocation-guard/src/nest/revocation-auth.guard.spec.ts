import { Public, Roles } from '@app/auth-metadata';
import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { RevocationGuard } from '../revocation-guard';
import { RevocationAuthGuard } from './revocation-auth.guard';

// The Nest guard's own rules, with the decision itself (RevocationGuard) replaced: which
// routes it checks, with which roles, and that nothing reaches a handler unchecked.

class BaseController {
  list = (): string[] => [];
}
/** The handler Nest passes for `list`: one function, whichever controller it serves. */
const handler = { name: 'list' };
@Public()
class OpenController extends BaseController {}
@Roles('admin')
class AdminController extends BaseController {}

function context(type: 'http' | 'rpc' | 'ws', cls: object, handler: object): ExecutionContext {
  const request = { headers: { authorization: 'Bearer t' } };
  return {
    getType: () => type,
    getClass: () => cls,
    getHandler: () => handler,
    switchToHttp: () => ({
      getRequest: () => request,
      getResponse: () => ({ header: () => undefined }),
    }),
  } as unknown as ExecutionContext;
}

describe('RevocationAuthGuard', () => {
  const roles: (readonly string[])[] = [];
  const decisions = {
    decide: (_: unknown, required: readonly string[]) => {
      roles.push(required);
      return { ok: true, session: { sub: 'u', sid: 's' }, stale: false };
    },
  } as unknown as RevocationGuard;
  const guard = new RevocationAuthGuard(new Reflector(), decisions);

  beforeEach(() => {
    roles.length = 0;
  });

  it('reads a route’s rules per handler and class: a handler shared by two controllers keeps each one’s', () => {
    expect(guard.canActivate(context('http', OpenController, handler))).toBe(true);
    expect(roles).toEqual([]); // public: no decision at all
    expect(guard.canActivate(context('http', AdminController, handler))).toBe(true);
    expect(roles).toEqual([['admin']]);
    expect(guard.canActivate(context('http', OpenController, handler))).toBe(true);
    expect(roles).toEqual([['admin']]);
  });

  it('lets no other kind of context through unchecked (RPC, WebSocket), unless public', () => {
    expect(guard.canActivate(context('rpc', AdminController, handler))).toBe(false);
    expect(guard.canActivate(context('ws', AdminController, handler))).toBe(false);
    expect(guard.canActivate(context('rpc', OpenController, handler))).toBe(true);
  });
});

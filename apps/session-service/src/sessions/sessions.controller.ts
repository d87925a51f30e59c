import { Controller, Delete, Get, HttpCode, Param } from '@nestjs/common';
import { CurrentCaller, type Caller } from '../auth/auth.decorators';
import { sessionIdParam } from '../http/schemas';
import { SessionService } from './session.service';
import type { SessionView } from './session.types';

@Controller('sessions')
export class SessionsController {
  constructor(private readonly sessions: SessionService) {}

  /** The caller's devices, most recently active first, the current one marked. */
  @Get()
  async list(@CurrentCaller() caller: Caller): Promise<(SessionView & { current: boolean })[]> {
    const sessions = await this.sessions.list(caller.userId);
    return sessions.map((session) => ({
      ...session,
      current: session.session_id === caller.sessionId,
    }));
  }

  @Delete(':sessionId')
  @HttpCode(204)
  async end(
    @CurrentCaller() caller: Caller,
    @Param('sessionId', { schema: sessionIdParam }) sessionId: string,
  ): Promise<void> {
    await this.sessions.endOwn(caller.userId, sessionId);
  }
}

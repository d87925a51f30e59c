import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query } from '@nestjs/common';
import { Roles } from '../auth/auth.decorators';
import { adminReason, planBody, sessionIdParam, userIdParam, type PlanBody } from '../http/schemas';
import { SessionService } from '../sessions/session.service';
import type { Plan, SessionView } from '../sessions/session.types';

/** Forced logouts and plans; `:userId` is the `sub` of that user's access tokens. */
@Controller('admin')
@Roles('admin')
export class AdminController {
  constructor(private readonly sessions: SessionService) {}

  @Get('users/:userId/sessions')
  list(@Param('userId', { schema: userIdParam }) userId: string): Promise<SessionView[]> {
    return this.sessions.list(userId);
  }

  @Delete('sessions/:sessionId')
  @HttpCode(204)
  async end(
    @Param('sessionId', { schema: sessionIdParam }) sessionId: string,
    @Query('reason', { schema: adminReason }) reason: string | undefined,
  ): Promise<void> {
    await this.sessions.endByAdmin(sessionId, reason);
  }

  @Post('users/:userId/logout-all')
  @HttpCode(204)
  async logoutAll(
    @Param('userId', { schema: userIdParam }) userId: string,
    @Query('reason', { schema: adminReason }) reason: string | undefined,
  ): Promise<void> {
    await this.sessions.logoutAll(userId, 'admin', reason);
  }

  @Put('users/:userId/plan')
  async setPlan(
    @Param('userId', { schema: userIdParam }) userId: string,
    @Body({ schema: planBody }) plan: PlanBody,
  ): Promise<Plan> {
    await this.sessions.setPlan(userId, plan);
    return plan;
  }
}

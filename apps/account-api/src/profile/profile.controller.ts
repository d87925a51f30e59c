import { RevocationGuard, type VerifiedSession } from '@app/revocation-guard';
import { CurrentSession, Roles } from '@app/revocation-guard/nest';
import { Controller, Get } from '@nestjs/common';

@Controller()
export class ProfileController {
  constructor(private readonly guard: RevocationGuard) {}

  /** The caller's profile as the access token tells it. */
  @Get('profile')
  profile(@CurrentSession() session: VerifiedSession) {
    return {
      sub: session.sub,
      roles: session.roles ?? [],
      session: {
        session_id: session.sid,
        token_issued_at: new Date(session.iat * 1000).toISOString(),
        token_expires_at: new Date(session.exp * 1000).toISOString(),
      },
    };
  }

  /** Operators' view of this instance's revocation view: admin role only. */
  @Roles('admin')
  @Get('admin/revocation-view')
  revocationView() {
    return this.guard.health();
  }
}

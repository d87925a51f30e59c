import { Controller, Get } from '@nestjs/common';
import type { VerifiedSession } from '../authenticator';
import { CurrentSession } from './current-session.decorator';

/** `GET /me`: who the access token is for, `{ sub, session_id }` (the APIs' public contract). */
@Controller('me')
export class MeController {
  @Get()
  me(@CurrentSession() session: VerifiedSession): { sub: string; session_id: string } {
    return { sub: session.sub, session_id: session.sid };
  }
}

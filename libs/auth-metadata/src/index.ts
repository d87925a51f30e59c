import { SetMetadata } from '@nestjs/common';

// Route metadata shared by every guard of the system (the session service's own and the
// APIs' revocation guard), so shared controllers such as /health can opt out once.

export const IS_PUBLIC = 'auth:public';
export const REQUIRED_ROLES = 'auth:roles';

/** The route needs no access token. */
export const Public = () => SetMetadata(IS_PUBLIC, true);

/** The route needs an access token carrying every one of these roles (403 otherwise). */
export const Roles = (...roles: string[]) => SetMetadata(REQUIRED_ROLES, roles);

import 'reflect-metadata';
import { exitOnStartupFailure, runHttpApp } from '@app/observability';
import type { Type } from '@nestjs/common';
import { type Mode, modeFromEnv } from './config';
import { guardModule } from './guard.module';
import { naiveModule } from './naive.module';
import { noauthModule } from './noauth.module';

// The request-overhead benchmark's app (bench/request-overhead.ts): one NestJS app on Fastify,
// built like the API services, whose GET /me is guarded according to BENCH_MODE.
const modules: Record<Mode, () => Type> = {
  noauth: noauthModule,
  guard: guardModule,
  naive: naiveModule,
};

Promise.resolve()
  .then(() => runHttpApp(modules[modeFromEnv(process.env)](), 'bench-overhead'))
  .catch(exitOnStartupFailure);

import 'reflect-metadata';
import { exitOnStartupFailure, runHttpApp } from '@app/observability';
import { AppModule } from './app.module';
import { serveOpenApi } from './http/openapi';

runHttpApp(AppModule, 'session-service', serveOpenApi).catch(exitOnStartupFailure);

import 'reflect-metadata';
import { exitOnStartupFailure, runHttpApp } from '@app/observability';
import { AppModule } from './app.module';
import { configureSessionApp } from './http/openapi';

runHttpApp(AppModule, 'session-service', configureSessionApp).catch(exitOnStartupFailure);

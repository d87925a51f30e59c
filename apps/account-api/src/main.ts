import 'reflect-metadata';
import { exitOnStartupFailure, runHttpApp } from '@app/observability';
import { AppModule } from './app.module';

runHttpApp(AppModule, 'account-api').catch(exitOnStartupFailure);

import 'reflect-metadata';
import { exitOnStartupFailure, runHttpApp } from '@app/observability';
import { AppModule } from './app.module';
import { ssfRoutes } from './routes';
import { Transmitter } from './transmitter';

runHttpApp(AppModule, 'ssf-transmitter', (app) => {
  void app.register(ssfRoutes(app.get(Transmitter)));
}).catch(exitOnStartupFailure);

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from '@app/testing';
import { root } from '../../scripts/system.ts';
import { freePort, startProcess, type ProcessHandle } from '../../scripts/lib/process.ts';
import { call, RevocationSystem, type Session } from '../e2e/revocation-system';

// The revocation guard as another team gets it: `npm pack`ed, installed from the tarball into
// a project outside this repository, used there by a plain Express app and a small NestJS app
// (JavaScript, nothing from this repository but the package), against this system's Kafka and
// session service. A session revoked here is refused there.

const EXPRESS_APP = `
const express = require('express');
const { createRevocationGuard, revocationMiddleware } = require('@session-revocation/guard');

const guard = createRevocationGuard({
  serviceName: 'scratch-express',
  brokers: process.env.KAFKA_BROKERS.split(','),
  topic: process.env.REVOCATION_TOPIC,
  jwksUrl: process.env.JWKS_URL,
  issuer: process.env.TOKEN_ISSUER,
  audience: 'session-revocation-apis',
});
const app = express();
app.get('/me', revocationMiddleware(guard), (req, res) =>
  res.json({ sub: req.auth.sub, session_id: req.auth.sid }),
);
const server = app.listen(Number(process.env.PORT), '127.0.0.1');
void guard.start();
process.on('SIGTERM', async () => {
  server.close();
  await guard.stop();
  process.exit(0);
});
`;

const NEST_APP = `
import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { revocationGuardEnv } from '@session-revocation/guard';
import { CurrentSession, RevocationGuardModule } from '@session-revocation/guard/nest';

// Plain JavaScript: the decorators applied by hand.
class MeController {
  me(session) {
    return { sub: session.sub, session_id: session.sid };
  }
}
CurrentSession()(MeController.prototype, 'me', 0);
Get()(MeController.prototype, 'me', Object.getOwnPropertyDescriptor(MeController.prototype, 'me'));
Controller('me')(MeController);

class AppModule {}
Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true, validate: (env) => revocationGuardEnv.parse(env) }),
    RevocationGuardModule.fromEnv('scratch-nest'),
  ],
  controllers: [MeController],
})(AppModule);

const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
app.enableShutdownHooks();
await app.listen(Number(process.env.PORT), '127.0.0.1');
`;

describe('the guard as an npm package, in a project outside the repository', () => {
  const system = new RevocationSystem({ apisPerService: 0 });
  const scratch = mkdtempSync(join(tmpdir(), 'guard-scratch-'));
  const apps: { label: string; url: string; process: ProcessHandle }[] = [];

  beforeAll(async () => {
    await system.start();
    const tarball = execFileSync(process.execPath, [join(root, 'scripts', 'pack-guard.ts')], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
    writeFileSync(join(scratch, 'package.json'), JSON.stringify({ private: true }));
    execFileSync(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        tarball,
        'express@5',
        '@nestjs/common@12',
        '@nestjs/core@12',
        '@nestjs/config@12',
        '@nestjs/platform-express@12',
        'reflect-metadata',
        'rxjs',
      ],
      { cwd: scratch, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    writeFileSync(join(scratch, 'express-app.cjs'), EXPRESS_APP);
    writeFileSync(join(scratch, 'nest-app.mjs'), NEST_APP);
    for (const [label, file] of [
      ['express', 'express-app.cjs'],
      ['nest', 'nest-app.mjs'],
    ] as const) {
      const port = await freePort();
      const env = {
        ...process.env,
        PORT: String(port),
        KAFKA_BROKERS: system.kafka.brokers,
        REVOCATION_TOPIC: system.topic,
        JWKS_URL: `${system.sessionServiceUrl}/.well-known/jwks.json`,
        TOKEN_ISSUER: system.sessionServiceUrl,
      };
      const proc = startProcess(process.execPath, [file], {
        cwd: scratch,
        env,
        logFile: join(system.logDir, `scratch-${label}.log`),
        name: `scratch-${label}`,
      });
      apps.push({ label, url: `http://127.0.0.1:${port}`, process: proc });
    }
  });

  afterAll(async () => {
    await Promise.allSettled(apps.map((app) => app.process.stop(10_000)));
    await system.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  const me = (url: string, session: Session) =>
    call(url, 'GET', '/me', { token: session.accessToken });

  it('a plain Express app and a NestJS app refuse a session once it is revoked here', async () => {
    const session = await system.signIn('alice', 'alice-pass', 'phone');
    for (const app of apps) {
      const answer = await eventually(
        `${app.label} to accept the session (ready)`,
        async () => {
          if (!app.process.isAlive()) throw new Error(`${app.label} exited (see its log)`);
          const reply = await me(app.url, session).catch(() => undefined);
          return reply?.status === 200 ? reply : undefined;
        },
        { timeoutMs: 60_000 },
      );
      expect(answer.body).toEqual({ sub: 'alice', session_id: session.sessionId });
    }
    expect((await system.as(session, 'POST', '/auth/logout')).status).toBe(204);
    for (const app of apps) {
      const refused = await eventually(`${app.label} to refuse the revoked session`, async () => {
        const reply = await me(app.url, session);
        return reply.status === 401 ? reply : undefined;
      });
      expect(refused.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    }
  });
});

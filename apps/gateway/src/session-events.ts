import type { AppliedRevocation, RevocationGuard } from '@app/revocation-guard';
import type { FastifyInstance } from 'fastify';
import type { Readable } from 'node:stream';
import type { CookieSessions } from './cookie-sessions';
import { ClientStream, sendEventStream, type EventStreamSettings } from './events';
import type { CookieSession } from './token-store';

/** What a page is told when its own session ends: who ended it and why. */
export interface SessionEnded {
  initiating_entity: AppliedRevocation['revoked']['initiating_entity'];
  /** The event's `reason_admin.en` (`user_logout`, `device_limit`, an admin's words…). */
  reason: string | null;
  /** The event's `event_timestamp`, ISO 8601. */
  at: string;
}

interface Watcher {
  stream: ClientStream;
  session: CookieSession;
}

/**
 * `GET /bff/session/events` streams: one per open page, each told once, with an `ended` event,
 * when the revocation view says its own session ended (this session, or every session of its
 * user), then closed. Indexed by session and by user, so an applied revocation reaches only
 * the streams it ends, however many are open.
 */
export class SessionEndStreams {
  private readonly bySession = new Map<string, Set<Watcher>>();
  private readonly byUser = new Map<string, Set<Watcher>>();
  private unsubscribe: (() => void) | undefined;
  private keepAlive: NodeJS.Timeout | undefined;
  private count = 0;

  constructor(
    private readonly guard: Pick<RevocationGuard, 'onRevocation' | 'store'>,
    private readonly settings: Pick<EventStreamSettings, 'keepAliveMs'>,
  ) {}

  get size(): number {
    return this.count;
  }

  open(session: CookieSession): Readable {
    // A page only ever needs one event: a client that does not read is cut off at once.
    const watcher: Watcher = { session, stream: new ClientStream(1, () => undefined) };
    add(this.bySession, session.session_id, watcher);
    add(this.byUser, session.sub, watcher);
    this.count += 1;
    watcher.stream.body.once('close', () => {
      this.leave(watcher);
    });
    this.unsubscribe ??= this.guard.onRevocation((applied) => {
      this.applied(applied);
    });
    this.keepAlive ??= setInterval(() => {
      for (const set of this.bySession.values())
        for (const w of set) w.stream.comment('keep-alive');
    }, this.settings.keepAliveMs).unref();
    watcher.stream.send('retry: 3000\n: your session\n\n');
    // Ended between the caller's check and now: said at once (who and why are not known here).
    const { sub, session_id: sid, iat } = session;
    if (this.guard.store.check({ sub, sid, iat }) !== undefined)
      this.end(watcher, {
        initiating_entity: 'system',
        reason: null,
        at: new Date().toISOString(),
      });
    return watcher.stream.body;
  }

  /** Ends every stream (gateway shutdown); the pages reconnect to another instance. */
  closeAll(): void {
    for (const set of [...this.bySession.values()])
      for (const watcher of [...set]) {
        watcher.stream.end(': shutting down\n\n');
        this.leave(watcher);
      }
  }

  private applied({ revoked }: AppliedRevocation): void {
    const sid = revoked.subject.session?.id;
    const candidates =
      sid === undefined ? this.byUser.get(revoked.subject.user.id) : this.bySession.get(sid);
    for (const watcher of [...(candidates ?? [])]) {
      const { sub, session_id, iat } = watcher.session;
      // The view decides (a user-wide event covers only sessions issued before it).
      if (this.guard.store.check({ sub, sid: session_id, iat }) === undefined) continue;
      this.end(watcher, {
        initiating_entity: revoked.initiating_entity,
        reason: revoked.reason_admin?.en ?? null,
        at: new Date(revoked.event_timestamp * 1000).toISOString(),
      });
    }
  }

  private end(watcher: Watcher, ended: SessionEnded): void {
    watcher.stream.end(`event: ended\ndata: ${JSON.stringify(ended)}\n\n`);
    this.leave(watcher);
  }

  private leave(watcher: Watcher): void {
    const removed = remove(this.bySession, watcher.session.session_id, watcher);
    remove(this.byUser, watcher.session.sub, watcher);
    if (!removed) return;
    this.count -= 1;
    if (this.count > 0) return;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }
}

function add(index: Map<string, Set<Watcher>>, key: string, watcher: Watcher): void {
  const set = index.get(key) ?? new Set<Watcher>();
  set.add(watcher);
  index.set(key, set);
}

function remove(index: Map<string, Set<Watcher>>, key: string, watcher: Watcher): boolean {
  const set = index.get(key);
  if (!set?.delete(watcher)) return false;
  if (set.size === 0) index.delete(key);
  return true;
}

/**
 * `GET /bff/session/events`: the page's own session, as Server-Sent Events: `ended` (with who
 * and why) the moment this gateway applies the revocation that ends it. Cookie auth; no
 * `x-csrf` (an EventSource cannot send it; the stream changes nothing), an allowed `Origin`
 * when sent. A session already ended answers 401, so a reconnecting page learns it too.
 */
export function sessionEventRoutes(
  fastify: FastifyInstance,
  {
    guard,
    cookies,
    settings,
  }: {
    guard: RevocationGuard;
    cookies: CookieSessions;
    settings: Pick<EventStreamSettings, 'keepAliveMs'>;
  },
): SessionEndStreams {
  const streams = new SessionEndStreams(guard, settings);
  fastify.addHook('preClose', (done) => {
    streams.closeAll();
    done();
  });
  fastify.get('/bff/session/events', { exposeHeadRoute: false }, async (request, reply) => {
    cookies.checkOrigin(request);
    const { session } = await cookies.live(request);
    return sendEventStream(reply, streams.open(session));
  });
  return streams;
}

import type { AppliedRevocation, RevocationGuard } from '@app/revocation-guard';
import { Logger } from '@nestjs/common';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { CookieSessions } from './cookie-sessions';
import { Refusal } from './refusal';
import type { CookieSession } from './token-store';

export interface EventStreamSettings {
  /** A comment line goes to every stream this often (GATEWAY_EVENTS_KEEPALIVE_MS). */
  keepAliveMs: number;
  /** Most events held back for a client that does not read (GATEWAY_EVENTS_BUFFER). */
  bufferSize: number;
  /** Open streams (a gauge). */
  subscribers?: { inc(): void; dec(): void };
  /** Streams closed because their client fell more than `bufferSize` events behind. */
  droppedClients?: { inc(): void };
}

const DEFAULT_SETTINGS: EventStreamSettings = { keepAliveMs: 15_000, bufferSize: 1_000 };
/** How long an EventSource waits before it reconnects (the SSE `retry:` field). */
const RETRY_MS = 3_000;

/** One revocation as the admin console gets it (DESIGN.md's row for `GET /bff/events`, and more). */
export interface RevocationNotice {
  /** The event's `jti`: a repeat of an event (delivery is at least once) has the same one. */
  jti: string;
  /** Absent: every session of the user that existed at `at` ended. */
  session_id?: string;
  user_id: string;
  initiating_entity: AppliedRevocation['revoked']['initiating_entity'];
  /** The event's `reason_admin.en` (e.g. `user_logout`, `device_limit`); null without one. */
  reason: string | null;
  /** The event's `event_timestamp`, ISO 8601. */
  at: string;
  /** When this gateway instance applied it, ISO 8601. */
  applied_at: string;
  /** `applied_at − at` in milliseconds (clocks of two hosts: may be off by their skew). */
  delay_ms: number;
  /** False when the view already held it (a repeat, or covered by a logout-all). */
  changed: boolean;
}

export function revocationNotice({ event, revoked, appliedAt, changed }: AppliedRevocation) {
  const at = revoked.event_timestamp * 1000;
  const notice: RevocationNotice = {
    jti: event.jti,
    ...(revoked.subject.session && { session_id: revoked.subject.session.id }),
    user_id: revoked.subject.user.id,
    initiating_entity: revoked.initiating_entity,
    reason: revoked.reason_admin?.en ?? null,
    at: new Date(Math.round(at)).toISOString(),
    applied_at: new Date(appliedAt).toISOString(),
    delay_ms: Math.round(appliedAt - at),
    changed,
  };
  return notice;
}

/**
 * One client's stream of SSE frames, as a Readable the reply pipes to the socket. While the
 * socket takes what is written, frames go straight through; once it stops (the Readable's
 * buffer is full: `push` answered false), events wait in a backlog of at most `limit`; one
 * more closes the stream (`onOverflow`). A client that cannot keep up reconnects and sees the
 * gap in the `id:`s; holding an unbounded backlog for it would let one slow admin tab grow
 * the gateway's memory without end.
 */
export class ClientStream {
  readonly body: Readable;
  private readonly backlog: string[] = [];
  /** `push` answered false: nothing more until the Readable asks (`read`). */
  private full = false;
  /** `end` was called: the last frame is on its way, nothing more goes in. */
  private ending = false;

  constructor(
    private readonly limit: number,
    private readonly onOverflow: () => void,
    highWaterMark = 16 * 1024,
  ) {
    this.body = new Readable({
      highWaterMark,
      read: () => {
        this.drain();
      },
    });
  }

  get open(): boolean {
    return !this.body.destroyed && !this.ending;
  }

  /** Sends an event frame; false when the stream is closed, or was just closed by overflow. */
  send(frame: string): boolean {
    if (!this.open) return false;
    if (!this.full) {
      this.full = !this.body.push(frame);
      return true;
    }
    this.backlog.push(frame);
    if (this.backlog.length <= this.limit) return true;
    this.backlog.length = 0;
    this.body.destroy();
    this.onOverflow();
    return false;
  }

  /** A comment line, only to a client that reads: a keep-alive has no place in a backlog. */
  comment(text: string): void {
    if (this.open && !this.full) this.full = !this.body.push(`: ${text}\n\n`);
  }

  /** Ends with a last frame; a client that does not read is cut off instead of waited for. */
  end(lastFrame: string): void {
    if (!this.open) return;
    this.ending = true;
    if (this.full) {
      this.body.destroy();
      return;
    }
    this.body.push(lastFrame);
    this.body.push(null);
  }

  private drain(): void {
    this.full = false;
    while (!this.full && this.backlog.length > 0) this.full = !this.body.push(this.backlog.shift());
  }
}

interface Subscriber {
  stream: ClientStream;
  session: CookieSession;
}

/**
 * Every event stream open on this gateway instance. One listener on the guard (while any
 * stream is open) turns each applied revocation into one frame for all of them; a stream ends
 * when its own session is revoked or expires (checked on every event and every keep-alive,
 * against the revocation view only), and all end when the gateway shuts down.
 */
export class EventStreams {
  private readonly subscribers = new Set<Subscriber>();
  private readonly settings: EventStreamSettings;
  /** `id:` is `<this instance>-<sequence>`: a client sees a gap as a skipped number. */
  private readonly instance = randomBytes(4).toString('hex');
  private sequence = 0;
  private unsubscribe: (() => void) | undefined;
  private keepAlive: NodeJS.Timeout | undefined;
  private readonly logger = new Logger('EventStreams');

  constructor(
    private readonly guard: Pick<RevocationGuard, 'onRevocation' | 'store'>,
    settings: EventStreamSettings = DEFAULT_SETTINGS,
  ) {
    this.settings = settings;
  }

  get size(): number {
    return this.subscribers.size;
  }

  /** A stream for this (live, admin) session, already holding its `retry:` line. */
  open(session: CookieSession): Readable {
    const subscriber: Subscriber = {
      session,
      stream: new ClientStream(this.settings.bufferSize, () => {
        this.settings.droppedClients?.inc();
        this.logger.warn(
          `closed the event stream of session ${session.session_id}: more than ${this.settings.bufferSize} events behind`,
        );
      }),
    };
    subscriber.stream.body.once('close', () => {
      this.leave(subscriber);
    });
    this.subscribers.add(subscriber);
    this.settings.subscribers?.inc();
    this.unsubscribe ??= this.guard.onRevocation((applied) => {
      this.broadcast(applied);
    });
    this.keepAlive ??= setInterval(() => {
      this.tick();
    }, this.settings.keepAliveMs).unref();
    // The first bytes send the headers; `retry:` is how long an EventSource waits to reconnect.
    subscriber.stream.send(`retry: ${RETRY_MS}\n: revocation events\n\n`);
    return subscriber.stream.body;
  }

  /** Ends every stream (gateway shutdown). */
  closeAll(): void {
    for (const subscriber of [...this.subscribers]) this.end(subscriber, 'shutdown');
  }

  private broadcast(applied: AppliedRevocation): void {
    this.sequence += 1;
    const frame =
      `id: ${this.instance}-${this.sequence}\nevent: revocation\n` +
      `data: ${JSON.stringify(revocationNotice(applied))}\n\n`;
    for (const subscriber of [...this.subscribers])
      if (subscriber.stream.send(frame)) this.endIfSessionEnded(subscriber);
  }

  private tick(): void {
    for (const subscriber of [...this.subscribers]) {
      if (this.endIfSessionEnded(subscriber)) continue;
      subscriber.stream.comment('keep-alive');
    }
  }

  private endIfSessionEnded(subscriber: Subscriber): boolean {
    const { sub, session_id: sid, iat, expires_at } = subscriber.session;
    if (this.guard.store.check({ sub, sid, iat }) === undefined && Date.now() < expires_at)
      return false;
    this.end(subscriber, 'session_ended');
    return true;
  }

  private end(subscriber: Subscriber, reason: 'session_ended' | 'shutdown'): void {
    subscriber.stream.end(`event: end\ndata: ${JSON.stringify({ reason })}\n\n`);
    this.leave(subscriber);
  }

  private leave(subscriber: Subscriber): void {
    if (!this.subscribers.delete(subscriber)) return;
    this.settings.subscribers?.dec();
    if (this.subscribers.size > 0) return;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }
}

/** Answers with a Server-Sent Events stream: never stored, never buffered by a proxy. */
export function sendEventStream(reply: FastifyReply, body: Readable): FastifyReply {
  return (
    reply
      .header('content-type', 'text/event-stream; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('x-accel-buffering', 'no')
      // Nothing follows a stream on its connection: it closes with it (also at shutdown).
      .header('connection', 'close')
      .send(body)
  );
}

/**
 * `GET /bff/events`: Server-Sent Events of every revocation this gateway instance applies, for
 * admins (the console). Auth is the cookie session with the role admin; no `x-csrf`, which an
 * EventSource cannot send, and the request changes nothing, but an `Origin`, when sent, must
 * be an allowed one (a foreign page must not read the stream with the admin's cookie).
 */
export function eventRoutes(
  fastify: FastifyInstance,
  {
    guard,
    cookies,
    settings,
  }: { guard: RevocationGuard; cookies: CookieSessions; settings?: EventStreamSettings },
): EventStreams {
  const streams = new EventStreams(guard, settings);
  fastify.addHook('preClose', (done) => {
    streams.closeAll();
    done();
  });
  // No HEAD route: it would open a stream nobody reads.
  fastify.get('/bff/events', { exposeHeadRoute: false }, async (request, reply) => {
    cookies.checkOrigin(request);
    const { session } = await cookies.live(request);
    if (!session.roles.includes('admin'))
      throw new Refusal(403, { error: 'forbidden', error_description: 'role admin required' });
    return sendEventStream(reply, streams.open(session));
  });
  return streams;
}

// How long after a session ends every instance refuses it: each instance is checked with the
// session's credentials on a kept-alive connection of its own (node:http), polled back to back
// from the moment the ending was answered. All times come from `clock`, in this process.
import type { Agent, OutgoingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { StopWaiting, waitFor } from '../../scripts/lib/process.ts';
import { request } from './http.ts';
import { clock, distribution, msFields, round } from './report.ts';

/** Where a session is checked: a URL of one instance, the session's headers, a connection. */
export interface Checkpoint {
  label: string;
  url: string;
  headers: OutgoingHttpHeaders;
  agent: Agent;
}

/** Until every checkpoint answers 200 with its session: a live session is served everywhere. */
export async function acceptedEverywhere(
  points: (Checkpoint & { sessionId: string })[],
  timeoutMs: number,
) {
  await Promise.all(
    points.map((point) =>
      waitFor(
        `${point.label} to accept a new session`,
        async () => {
          const reply = await request(point.url, point);
          if (reply.status === 200) {
            const body = JSON.parse(reply.text) as { session_id?: string };
            if (body.session_id === point.sessionId) return true;
            throw new StopWaiting(`${point.label} answered with another session: ${reply.text}`);
          }
          // Only a stale view (503) may turn into a 200 by waiting; anything else is a fault.
          if (reply.status !== 503)
            throw new StopWaiting(
              `${point.label} did not accept a new session: ${reply.status} ${reply.text}`,
            );
          return false;
        },
        { timeoutMs, intervalMs: 5 },
      ),
    ),
  );
}

/**
 * Polls one checkpoint until it answers 401: back to back by default (no pause between polls,
 * as `waitFor` makes), so each poll is one round trip; with `pauseMs`, that long between a
 * reply and the next poll. Answers other than 200 and 401 are counted in `otherStatus`.
 */
async function refusedBy(
  point: Checkpoint,
  deadline: number,
  otherStatus: Record<number, number>,
  pauseMs: number,
) {
  let polls = 0;
  let lastAcceptedAt: number | undefined;
  for (;;) {
    const reply = await request(point.url, point);
    const at = clock();
    polls += 1;
    if (reply.status === 401) return { refusedAt: at, lastAcceptedAt, polls, reply };
    if (reply.status === 200) lastAcceptedAt = at;
    else otherStatus[reply.status] = (otherStatus[reply.status] ?? 0) + 1;
    if (performance.now() > deadline)
      throw new Error(`${point.label} still answers ${reply.status} long after the session ended`);
    if (pauseMs > 0) await sleep(pauseMs);
  }
}

/**
 * One sample: from `t0` (the ending answered, `sentAt` when it was asked) until every
 * checkpoint refused, within `timeoutMs`; each checkpoint polled back to back, or with
 * `pollPauseMs` between a reply and the next poll.
 */
export async function refusedEverywhere(
  points: Checkpoint[],
  { sentAt, t0 }: { sentAt: number; t0: number },
  timeoutMs: number,
  otherStatus: Record<number, number>,
  { pollPauseMs = 0 }: { pollPauseMs?: number } = {},
) {
  const deadline = performance.now() + timeoutMs;
  const each = await Promise.all(
    points.map((p) => refusedBy(p, deadline, otherStatus, pollPauseMs)),
  );
  const t1 = Math.max(...each.map((r) => r.refusedAt));
  return {
    t0,
    t1,
    logoutMs: t0 - sentAt,
    total: t1 - t0,
    perInstance: each.map((r) => r.refusedAt - t0),
    // How late the last refusal can have been noticed: since that instance's last 200.
    resolution: Math.max(...each.map((r) => r.refusedAt - (r.lastAcceptedAt ?? t0))),
    polls: each.reduce((sum, r) => sum + r.polls, 0),
    replies: each.map((r) => r.reply),
  };
}

export type Sample = Awaited<ReturnType<typeof refusedEverywhere>>;

/** The results fields of `samples`: `<prefix>p50_ms` … `<prefix>samples`, and the details. */
export function refusalFigures<P extends string>(prefix: P, samples: Sample[]) {
  const dist = distribution(samples.map((s) => s.total));
  return {
    ...msFields(dist, prefix),
    ...({ [`${prefix}samples`]: samples.length } as Record<`${P}samples`, number>),
    per_instance_ms: distribution(samples.flatMap((s) => s.perInstance)),
    logout_request_ms: distribution(samples.map((s) => s.logoutMs)),
    poll_resolution_ms: distribution(samples.map((s) => s.resolution)),
    polls_per_revocation: round(samples.reduce((sum, s) => sum + s.polls, 0) / samples.length, 1),
  };
}

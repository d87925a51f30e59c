// Revocation propagation to API instances, one revocation at a time: a session is opened,
// served by every instance, logged out, and every instance is polled until it refuses it
// (refusals.ts); an observer on the topic shows where the time went. bench/propagation.ts
// measures it against the stack's instances, bench/fan-out.ts against more and more of them.
import type { Agent } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AppName } from '../../scripts/system.ts';
import { builtLib } from './built.ts';
import { bearer, keepAliveAgent } from './http.ts';
import { acceptedEverywhere, refusedEverywhere } from './refusals.ts';
import { clock, distribution } from './report.ts';
import { log, type BenchRun } from './run.ts';
import { logOut, openSessions, type Core, type Session } from './stack.ts';
import { observeTopic } from './topic.ts';

/** Answers that are not what a refusal should look like, counted over a run. */
export interface Anomalies {
  no_invalid_token_challenge: number;
  other_status: Record<number, number>;
}
export const noAnomalies = (): Anomalies => ({ no_invalid_token_challenge: 0, other_status: {} });

/** An API instance, checked on GET /me over a kept-alive connection of its own. */
export interface Api {
  label: string;
  url: string;
  agent: Agent;
}

/** Every running instance of `service`, each with a kept-alive connection of its own. */
export const apisOf = (core: Core, service: AppName): Api[] =>
  core.system
    .instances(service)
    .map(({ label, url }) => ({ label, url, agent: keepAliveAgent(1) }));

/** When a session's event arrived on the topic: this process's clock, and the message's. */
export type Arrivals = Map<string, { receivedAt: number; sentAt: number }>;

/**
 * An observer on the topic (a consumer group of its own) noting when each session's event
 * arrived, for the breakdown only; resolves once it receives from every partition.
 */
export async function observeArrivals(run: BenchRun, core: Core, readyMs: number) {
  const contracts = builtLib('contracts');
  const arrivals: Arrivals = new Map();
  const options = { brokers: core.kafka.brokers, topic: core.topic, fromBeginning: false, readyMs };
  await observeTopic(run, options, (message) => {
    const receivedAt = clock();
    try {
      const decoded = contracts.decodeMessage(message);
      if (decoded.kind === 'heartbeat') return;
      const sessionId = decoded.event.events[contracts.SESSION_REVOKED].subject.session?.id;
      if (sessionId) arrivals.set(sessionId, { receivedAt, sentAt: Number(message.timestamp) });
    } catch {
      // not a message of the contract: not one of ours
    }
  });
  return arrivals;
}

export interface RevocationLimits {
  /** A new session must be served everywhere within this. */
  acceptedMs: number;
  /** A revocation that some instance still accepts after this long fails the run. */
  perRevocationMs: number;
  /** Between a poll's reply and the next poll of the same instance (0: back to back). */
  pollPauseMs?: number;
}

/** One revocation: `session` served by every instance, logged out, refused by every one. */
export async function revokeOnce(
  core: Core,
  apis: Api[],
  session: Session,
  anomalies: Anomalies,
  limits: RevocationLimits,
) {
  const { accessToken, sessionId } = session;
  const headers = bearer(accessToken);
  const points = apis.map(({ label, url, agent }) => ({ label, url: `${url}/me`, headers, agent }));
  await acceptedEverywhere(
    points.map((point) => ({ ...point, sessionId })),
    limits.acceptedMs,
  );
  const sentAt = clock();
  await logOut(core.sessionService.url, session.accessToken);
  const t0 = clock();
  const sample = await refusedEverywhere(
    points,
    { sentAt, t0 },
    limits.perRevocationMs,
    anomalies.other_status,
    { pollPauseMs: limits.pollPauseMs ?? 0 },
  );
  for (const reply of sample.replies)
    if (!/error="invalid_token"/.test(reply.headers['www-authenticate'] ?? ''))
      anomalies.no_invalid_token_challenge += 1;
  return { ...sample, sessionId: session.sessionId };
}

export type RevocationSample = Awaited<ReturnType<typeof revokeOnce>>;

/**
 * `warmup` revocations, then `revocations` measured ones, one at a time with `pauseMs` of idle
 * time after each, every one a fresh session (tagged `<tag>-<i>`). Returns the measured
 * samples and how long the whole loop took.
 */
export async function revokeOneAtATime(
  run: BenchRun,
  core: Core,
  apis: Api[],
  options: { warmup: number; revocations: number; pauseMs: number; tag: string },
  anomalies: Anomalies,
  limits: RevocationLimits,
) {
  const { warmup, revocations, pauseMs, tag } = options;
  const samples: RevocationSample[] = [];
  const total = warmup + revocations;
  log(`${warmup} warm-up revocations, then ${revocations} measured, one at a time`);
  const startedAt = performance.now();
  for (let i = 0; i < total; i += 1) {
    run.checkRunning('the revocations');
    const [session] = await openSessions(core, 1, { tag: `${tag}-${i}` });
    if (!session) throw new Error('no session opened');
    const sample = await revokeOnce(core, apis, session, anomalies, limits);
    if (i >= warmup) samples.push(sample);
    if ((i + 1) % 250 === 0) log(`${i + 1} of ${total}`);
    await sleep(pauseMs);
  }
  return { samples, elapsedS: (performance.now() - startedAt) / 1000 };
}

/**
 * Where the time goes, from the observer on the topic (same clock; the message timestamp is
 * the publisher's, in whole ms). Relative to the logout answer, so a step that happens before
 * the answer reaches this process is negative.
 */
export function breakdown(samples: RevocationSample[], arrivals: Arrivals) {
  const observed = samples.flatMap((s) => {
    const arrival = arrivals.get(s.sessionId);
    return arrival ? [{ s, arrival }] : [];
  });
  return {
    samples: observed.length,
    logout_answer_to_publisher_send_ms: distribution(
      observed.map(({ s, arrival }) => arrival.sentAt - s.t0),
    ),
    logout_answer_to_observer_receipt_ms: distribution(
      observed.map(({ s, arrival }) => arrival.receivedAt - s.t0),
    ),
    observer_receipt_to_last_rejection_ms: distribution(
      observed.map(({ s, arrival }) => s.t1 - arrival.receivedAt),
    ),
  };
}

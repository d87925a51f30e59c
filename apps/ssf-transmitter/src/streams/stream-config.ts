import { isInsecureRemoteUrl } from '@app/config';
import { DELIVERY_POLL, DELIVERY_PUSH, SESSION_REVOKED } from '@app/contracts';
import { z } from 'zod';

/** The events this transmitter sends, besides the verification events every stream gets. */
export const EVENTS_SUPPORTED = [SESSION_REVOKED] as const;

export const streamStatus = z.enum(['enabled', 'paused', 'disabled']);
export type StreamStatus = z.infer<typeof streamStatus>;

const delivery = z.strictObject({
  method: z.enum([DELIVERY_PUSH, DELIVERY_POLL], {
    error: `must be ${DELIVERY_PUSH} (push) or ${DELIVERY_POLL} (poll)`,
  }),
  endpoint_url: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .optional(),
  authorization_header: z.string().min(1).max(4096).optional(),
});
export type Delivery = z.infer<typeof delivery>;

/**
 * What a receiver may set (SSF 1.0 section 8.1.1: Receiver-Supplied properties). Properties
 * the transmitter supplies may be sent back as they were read; they are ignored. Anything else
 * is refused, so that a misspelt property is not silently dropped.
 */
const receiverSupplied = {
  events_requested: z.array(z.string().min(1).max(512)).max(64).optional(),
  delivery: delivery.optional(),
  description: z.string().max(1024).optional(),
  stream_id: z.string().optional(),
  iss: z.unknown().optional(),
  aud: z.unknown().optional(),
  events_supported: z.unknown().optional(),
  events_delivered: z.unknown().optional(),
  min_verification_interval: z.unknown().optional(),
  inactivity_timeout: z.unknown().optional(),
};

export const createStreamRequest = z.strictObject(receiverSupplied);
export const replaceStreamRequest = z.strictObject({
  ...receiverSupplied,
  stream_id: z.string().min(1),
});
export const updateStreamRequest = replaceStreamRequest;
export type StreamRequest = z.infer<typeof createStreamRequest>;
/** What a receiver decides of a stream. */
export type ReceiverSettings = Pick<StreamRequest, 'events_requested' | 'delivery' | 'description'>;

/** A stream as kept in Redis. */
export interface StreamRecord {
  stream_id: string;
  client_id: string;
  aud: string;
  events_requested: string[];
  delivery: Delivery;
  description?: string;
  status: StreamStatus;
  reason?: string;
  created_at: number;
}

/** Why a request cannot be served: its status and the `{error, error_description}` answer. */
export class SsfError extends Error {
  constructor(
    readonly status: 400 | 401 | 404 | 409,
    readonly error: string,
    description: string,
  ) {
    super(description);
  }
}

export const invalidRequest = (description: string) =>
  new SsfError(400, 'invalid_request', description);

/** The first problem zod found, in words. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  const where = issue?.path.join('.');
  return `${where ? `${where}: ` : ''}${issue?.message ?? 'invalid'}`;
}

/** Parses a request body with `schema`, or throws a 400 naming the first problem. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const result = schema.safeParse(body ?? {});
  if (!result.success) throw invalidRequest(describeIssue(result.error));
  return result.data;
}

export interface DeliveryRules {
  /** Plain http push endpoints on other hosts (SSF_ALLOW_HTTP_RECEIVERS). */
  allowHttpReceivers: boolean;
}

/**
 * The receiver-supplied part of a stream, checked: the events delivered are those requested
 * that this transmitter supports (all of them when none are named); none at all is refused,
 * since such a stream would never carry an event. Push needs the receiver's `endpoint_url`;
 * poll gets the transmitter's, so a receiver may not name one.
 */
export function checkedSettings(
  request: ReceiverSettings,
  rules: DeliveryRules,
): Pick<StreamRecord, 'events_requested' | 'delivery' | 'description'> {
  const events_requested = request.events_requested ?? [...EVENTS_SUPPORTED];
  if (!events_requested.some((event) => (EVENTS_SUPPORTED as readonly string[]).includes(event)))
    throw invalidRequest(
      `events_requested: none of the requested events is supported (supported: ${EVENTS_SUPPORTED.join(', ')})`,
    );
  const given = request.delivery ?? { method: DELIVERY_POLL };
  if (given.method === DELIVERY_PUSH) {
    if (given.endpoint_url === undefined)
      throw invalidRequest('delivery.endpoint_url: required for push delivery');
    if (!rules.allowHttpReceivers && isInsecureRemoteUrl(given.endpoint_url))
      throw invalidRequest('delivery.endpoint_url: must be https (plain http only on loopback)');
  } else if (given.endpoint_url !== undefined || given.authorization_header !== undefined) {
    throw invalidRequest(
      'delivery: endpoint_url and authorization_header are the transmitter’s for poll delivery',
    );
  }
  return {
    events_requested,
    delivery: given,
    ...(request.description !== undefined && { description: request.description }),
  };
}

/** The stream configuration a receiver reads (SSF 1.0 section 8.1.1). */
export function streamConfiguration(stream: StreamRecord, issuer: string) {
  const { method, endpoint_url } = stream.delivery;
  return {
    stream_id: stream.stream_id,
    iss: issuer,
    aud: stream.aud,
    events_supported: [...EVENTS_SUPPORTED],
    events_requested: stream.events_requested,
    events_delivered: stream.events_requested.filter((event) =>
      (EVENTS_SUPPORTED as readonly string[]).includes(event),
    ),
    delivery: {
      method,
      endpoint_url:
        method === DELIVERY_POLL ? `${issuer}/ssf/poll/${stream.stream_id}` : endpoint_url,
    },
    ...(stream.description !== undefined && { description: stream.description }),
  };
}

/** Whether a stream delivers `event` (a verification event always goes). */
export const delivers = (stream: StreamRecord, event: string): boolean =>
  stream.events_requested.includes(event);

export const statusRequest = z.strictObject({
  stream_id: z.string().min(1),
  status: streamStatus,
  reason: z.string().max(1024).optional(),
});

/** Subjects a stream can be narrowed to: users (opaque ids, or complex with `user`) and sessions. */
const opaque = z.strictObject({ format: z.literal('opaque'), id: z.string().min(1).max(256) });
export const subject = z.union(
  [
    opaque,
    z.strictObject({ format: z.literal('complex'), user: opaque, session: opaque.optional() }),
    z.strictObject({ format: z.literal('complex'), session: opaque }),
  ],
  {
    error: 'unsupported subject: an opaque user id, or a complex subject with user and/or session',
  },
);

export const subjectRequest = z.strictObject({
  stream_id: z.string().min(1),
  subject,
  verified: z.boolean().optional(),
});

/** The Redis field of a subject: the session when it names one, else the user. */
export function subjectKey(given: z.infer<typeof subject>): string {
  if (given.format === 'opaque') return `user:${given.id}`;
  if (given.session) return `session:${given.session.id}`;
  if ('user' in given) return `user:${given.user.id}`;
  throw invalidRequest('subject: names neither a user nor a session');
}

export const verifyRequest = z.strictObject({
  stream_id: z.string().min(1),
  state: z.string().max(1024).optional(),
});

export const pollRequest = z.strictObject({
  maxEvents: z.int().min(0).max(1000).optional(),
  returnImmediately: z.boolean().optional(),
  ack: z.array(z.string().min(1).max(128)).max(1000).optional(),
  setErrs: z
    .record(z.string(), z.strictObject({ err: z.string(), description: z.string().optional() }))
    .optional(),
});

import type { RevocationEvent, SessionRevoked } from '@app/contracts';
import type { Logger } from '../logger';

/** A revocation this instance applied to its store, as its listeners get it. */
export interface AppliedRevocation {
  /** The Security Event Token payload as it was on the topic (validated). */
  event: RevocationEvent;
  /** Its `session-revoked` event: subject, `event_timestamp`, `initiating_entity`, `reason_admin`. */
  revoked: SessionRevoked;
  /** When this instance applied it, milliseconds since the epoch. */
  appliedAt: number;
  /** Whether the store changed: false for a repeat (delivery is at least once) or one already covered. */
  changed: boolean;
}

/**
 * Called once the store holds the revocation (so a check from within sees it), on the
 * consumer's path: keep it short and do not wait on anything. What it throws, or the promise
 * it returns rejects with, is logged and goes no further.
 */
export type RevocationListener = (applied: AppliedRevocation) => unknown;

/** The guard's listeners of applied revocations; one that fails never stops consumption. */
export class RevocationListeners {
  /** One entry per subscription: the same function subscribed twice is called twice. */
  private readonly entries = new Set<{ listener: RevocationListener }>();

  constructor(private readonly logger: Logger) {}

  add(listener: RevocationListener): () => void {
    const entry = { listener };
    this.entries.add(entry);
    return () => {
      this.entries.delete(entry);
    };
  }

  get size(): number {
    return this.entries.size;
  }

  notify(applied: AppliedRevocation): void {
    for (const { listener } of [...this.entries]) {
      try {
        const result = listener(applied);
        if (result instanceof Promise)
          result.catch((error: unknown) => {
            this.failed(error);
          });
      } catch (error) {
        this.failed(error);
      }
    }
  }

  private failed(error: unknown): void {
    this.logger.error(
      `a revocation listener failed: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

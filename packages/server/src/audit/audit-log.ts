/**
 * Appends audit events to the store. Events recorded while an append is running are batched
 * into the next one (one transaction), so a burst of requests costs one commit, not one each;
 * record() resolves once its event is stored (the request answers after that).
 */
import type { AuditEvent, NewAuditEvent, Store } from "../store/store.ts";

export class AuditLog {
  readonly #store: Store;
  readonly #log: (line: string) => void;
  #pending: { event: NewAuditEvent; done: (e: AuditEvent | undefined) => void }[] = [];
  #running: Promise<void> | undefined;

  constructor(store: Store, log: (line: string) => void) {
    this.#store = store;
    this.#log = log;
  }

  record(event: NewAuditEvent): Promise<AuditEvent | undefined> {
    return new Promise((done) => {
      this.#pending.push({ event, done });
      this.#running ??= this.#drain();
    });
  }

  /** Resolves once every event recorded so far is stored. */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending;
        this.#pending = [];
        try {
          const stored = await this.#store.appendAudit(batch.map((b) => b.event));
          batch.forEach((b, i) => {
            b.done(stored[i]);
          });
        } catch (err) {
          // The audit log must not take the API down with it; the failure is logged loudly.
          this.#log(
            `error: audit log append failed (${batch.length} events lost): ${(err as Error).stack ?? String(err)}`,
          );
          for (const b of batch) b.done(undefined);
        }
      }
    } finally {
      this.#running = undefined;
    }
  }
}

/**
 * Appends audit events to the store. An append starts on the event loop's next turn (setImmediate)
 * and takes every event recorded until then, and those recorded while it runs go into the next
 * one (one transaction each), so a burst of requests costs one commit, not one each.
 *
 * The pipeline does not wait for the append: a request's answer is written first and its event is
 * committed right after, off the answer's path (an append on SQLite is 0.15 ms of synchronous work
 * a call, more after idle: bench/results/2026-12-02-remote-layers.md). The commit runs in the same
 * event-loop iteration (its check phase), so no request sent after the answer arrived is read
 * before it. Readers of the log call flush() first, so a caller that got its answer and then
 * lists the audit sees its event. What a crash can lose is unchanged: before, a crash between a
 * command and its commit lost the event too, just before the answer rather than after it.
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
      this.#running ??= new Promise<void>((start) => setImmediate(start)).then(() => this.#drain());
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

/**
 * Webhooks: Standard Webhooks deliveries (https://www.standardwebhooks.com): headers
 * `webhook-id`, `webhook-timestamp` (seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
 * "id.timestamp.body">` keyed with the bytes of the `whsec_` secret. A delivery is a row first
 * (written off the API call's path) and is sent by a background worker, retried with exponential
 * backoff; the rows are the delivery history. A receiver that fails or hangs only delays its own
 * deliveries (each attempt is cut off after `timeoutMs`).
 */
import { createHmac, randomBytes } from "node:crypto";
import { WEBHOOK_EVENT_OF_ACTION, type WebhookEvent } from "@kiln/core/vocabulary";
import { newId } from "../pipeline/keys.ts";
import type { DeliveryRow, Store, WebhookRow } from "../store/store.ts";
import { refuseHookUrl } from "./private-address.ts";

export { WEBHOOK_EVENTS, type WebhookEvent } from "@kiln/core/vocabulary";

/** The audited action whose success sends each event. */
export const EVENT_OF_ACTION: Readonly<Record<string, WebhookEvent>> = WEBHOOK_EVENT_OF_ACTION;

export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

/** The `webhook-signature` value for one message. */
export function signature(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

export interface WebhookOptions {
  allowPrivate: boolean;
  /** One attempt's limit. @default 10 s */
  timeoutMs?: number;
  /** The first retry's delay; each later one doubles it. @default 1 s */
  backoffMs?: number;
  /** @default 8 (about 4 minutes of retries at the default backoff) */
  maxAttempts?: number;
  /** How often due deliveries are looked for. @default 250 ms */
  pollMs?: number;
  log: (line: string) => void;
}

export class WebhookDispatcher {
  readonly #store: Store;
  readonly #o: Required<WebhookOptions>;
  /** Webhooks per organisation, loaded on first use; dropped when one is added or removed. */
  readonly #hooks = new Map<string, Promise<WebhookRow[]>>();
  readonly #inFlight = new Map<string, AbortController>();
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;

  constructor(store: Store, options: WebhookOptions) {
    this.#store = store;
    this.#o = { timeoutMs: 10_000, backoffMs: 1_000, maxAttempts: 8, pollMs: 250, ...options };
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.#tick(), this.#o.pollMs);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const c of this.#inFlight.values()) c.abort();
    while (this.#ticking) await new Promise((r) => setTimeout(r, 10));
  }

  invalidate(orgId: string): void {
    this.#hooks.delete(orgId);
  }

  async #hooksOf(orgId: string): Promise<WebhookRow[]> {
    let hooks = this.#hooks.get(orgId);
    if (!hooks) {
      hooks = this.#store.listWebhooks(orgId);
      this.#hooks.set(orgId, hooks);
      hooks.catch(() => this.#hooks.delete(orgId));
    }
    return hooks;
  }

  /** True when some webhook of the organisation listens to `event` (cheap: cached). */
  async wants(orgId: string, event: WebhookEvent): Promise<boolean> {
    return (await this.#hooksOf(orgId)).some((h) => h.events.includes(event));
  }

  /** Queues the event for the organisation's webhooks that listen to it; never waits for a receiver. */
  async emit(orgId: string, event: WebhookEvent, data: unknown): Promise<void> {
    const hooks = (await this.#hooksOf(orgId)).filter((h) => h.events.includes(event));
    if (hooks.length === 0) return;
    const now = new Date().toISOString();
    const payload = JSON.stringify({ type: event, timestamp: now, data });
    await this.#store.addDeliveries(
      hooks.map(
        (h): DeliveryRow => ({
          id: newId("msg"),
          webhookId: h.id,
          orgId,
          event,
          payload,
          status: "pending",
          attempts: 0,
          nextAt: now,
          createdAt: now,
          updatedAt: now,
        }),
      ),
    );
    void this.#tick();
  }

  async #tick(): Promise<void> {
    if (this.#ticking || this.#timer === undefined) return;
    this.#ticking = true;
    try {
      const due = await this.#store.dueDeliveries(new Date().toISOString(), 50);
      for (const d of due) {
        if (this.#inFlight.has(d.id)) continue;
        const abort = new AbortController();
        this.#inFlight.set(d.id, abort);
        void this.#attempt(d, abort.signal)
          .catch((err) => this.#o.log(`error: webhook delivery ${d.id}: ${(err as Error).stack ?? String(err)}`))
          .finally(() => this.#inFlight.delete(d.id));
      }
    } catch (err) {
      if (this.#timer !== undefined) this.#o.log(`error: webhook worker: ${(err as Error).message}`);
    } finally {
      this.#ticking = false;
    }
  }

  async #attempt(d: DeliveryRow, stop: AbortSignal): Promise<void> {
    const hook = await this.#store.getWebhook(d.webhookId);
    const attempts = d.attempts + 1;
    const done = (status: string, lastError?: string, nextAt = new Date().toISOString()) =>
      this.#store.updateDelivery(d.id, {
        status,
        attempts,
        nextAt,
        updatedAt: new Date().toISOString(),
        ...(lastError === undefined ? {} : { lastError }),
      });
    if (!hook) return done("failed", "the webhook was deleted");
    // Checked again at each attempt: a name may resolve elsewhere since the webhook was made.
    const refused = await refuseHookUrl(hook.url, this.#o.allowPrivate);
    let error = refused;
    if (error === undefined) {
      const timestamp = Math.floor(Date.now() / 1000);
      try {
        const res = await fetch(hook.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "webhook-id": d.id,
            "webhook-timestamp": String(timestamp),
            "webhook-signature": signature(hook.secret, d.id, timestamp, d.payload),
          },
          body: d.payload,
          redirect: "manual",
          signal: AbortSignal.any([stop, AbortSignal.timeout(this.#o.timeoutMs)]),
        });
        await res.body?.cancel().catch(() => {});
        if (res.status >= 200 && res.status < 300) return done("delivered");
        error = `HTTP ${res.status}`;
      } catch (err) {
        if (stop.aborted) return; // the server is closing: the row stays pending for the next start
        error = (err as Error).name === "TimeoutError" ? `no answer within ${this.#o.timeoutMs} ms` : "unreachable";
      }
    }
    if (attempts >= this.#o.maxAttempts || refused !== undefined) return done("failed", error);
    const delay = this.#o.backoffMs * 2 ** (attempts - 1);
    return done("pending", error, new Date(Date.now() + delay).toISOString());
  }
}

/**
 * Failed authentication per client address: after `limit` failures within `windowMs`, the
 * address is refused (429 with Retry-After) until its oldest failure leaves the window.
 */
export class FailureLimiter {
  readonly #failures = new Map<string, number[]>();
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;

  constructor(options: { limit?: number; windowMs?: number; now?: () => number } = {}) {
    this.#limit = options.limit ?? 30;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** Seconds until the address may try again, or 0 when it may try now. */
  retryAfter(address: string): number {
    const recent = this.#recent(address);
    if (recent.length < this.#limit) return 0;
    const oldest = recent[recent.length - this.#limit] as number;
    return Math.max(1, Math.ceil((oldest + this.#windowMs - this.#now()) / 1000));
  }

  fail(address: string): void {
    const recent = this.#recent(address);
    recent.push(this.#now());
    // Keep the list bounded whatever an attacker does.
    if (recent.length > this.#limit) recent.splice(0, recent.length - this.#limit);
    this.#failures.set(address, recent);
    if (this.#failures.size > 10_000) this.#prune();
  }

  #recent(address: string): number[] {
    const cutoff = this.#now() - this.#windowMs;
    const list = (this.#failures.get(address) ?? []).filter((t) => t > cutoff);
    if (list.length === 0) this.#failures.delete(address);
    else this.#failures.set(address, list);
    return list;
  }

  #prune(): void {
    for (const address of [...this.#failures.keys()]) this.#recent(address);
  }
}

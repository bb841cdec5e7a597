/**
 * Running exec streams. Every `POST …/exec` answered with SSE registers its command here and
 * first sends `{ "type": "started", "execId" }`: `POST …/exec/{execId}/cancel` kills it while its
 * stream goes on to the result (so a client learns when it is gone). With `stdinStream: true`
 * the client then streams the command's
 * stdin as the raw body of `POST …/exec/{execId}/stdin`, and each chunk reaches the command as
 * it arrives (core's exec takes it as an async iterable); the end of that body closes stdin.
 * Chunks are handed over one at a time: the request is read only as fast as the command's stdin
 * takes it, so a fast sender meets backpressure, not a buffer. An entry lives as long as its
 * command, under the organisation, the sandbox and an unguessable id: another organisation's
 * command is not found.
 */
import { randomBytes } from "node:crypto";
import type { Services } from "./pipeline/services.ts";

/** A command's stdin, fed by the stdin route, read by core's exec. */
export class StdinFeed implements AsyncIterable<Uint8Array> {
  #pending: { chunk: Uint8Array; taken: (accepted: boolean) => void } | undefined;
  #wake: (() => void) | undefined;
  #ended = false;
  #closed = false;
  /** A stdin request is (or was) attached: only one may be. */
  attached = false;

  /** Resolves true once the command's side has taken the chunk; false when the command has ended. */
  push(chunk: Uint8Array): Promise<boolean> {
    if (this.#closed || this.#ended) return Promise.resolve(false);
    return new Promise((taken) => {
      this.#pending = { chunk, taken };
      this.#signal();
    });
  }

  /** The sender's stdin ended: the command reads EOF after what it was given. */
  end(): void {
    this.#ended = true;
    this.#signal();
  }

  /** The command ended: nothing more is taken. */
  close(): void {
    this.#closed = true;
    this.#pending?.taken(false);
    this.#pending = undefined;
    this.#signal();
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const pending = this.#pending;
      if (pending) {
        this.#pending = undefined;
        pending.taken(true);
        yield pending.chunk;
        continue;
      }
      if (this.#ended || this.#closed) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }
}

/** A running exec: its live stdin (with stdinStream) and the controller that cancels it. */
export interface RunningExec {
  feed?: StdinFeed;
  cancel: AbortController;
}

const FEEDS = new WeakMap<Services, Map<string, RunningExec>>();

function feeds(services: Services): Map<string, RunningExec> {
  let map = FEEDS.get(services);
  if (!map) {
    map = new Map();
    FEEDS.set(services, map);
  }
  return map;
}

const key = (orgId: string, sandboxId: string, execId: string) => `${orgId}\0${sandboxId}\0${execId}`;

/** Registers a running exec (with a live stdin when asked); call the returned `done` when it has ended. */
export function openExec(
  services: Services,
  orgId: string,
  sandboxId: string,
  options: { stdin: boolean },
): RunningExec & { execId: string; done: () => void } {
  const execId = `exec_${randomBytes(12).toString("base64url")}`;
  const running: RunningExec = { cancel: new AbortController(), ...(options.stdin ? { feed: new StdinFeed() } : {}) };
  const map = feeds(services);
  const k = key(orgId, sandboxId, execId);
  map.set(k, running);
  return {
    execId,
    ...running,
    done: () => {
      running.feed?.close();
      map.delete(k);
    },
  };
}

/** The running exec, or undefined (ended, unknown, another organisation's). */
export function findExec(
  services: Services,
  orgId: string,
  sandboxId: string,
  execId: string,
): RunningExec | undefined {
  return feeds(services).get(key(orgId, sandboxId, execId));
}

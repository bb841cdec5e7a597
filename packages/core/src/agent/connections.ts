/**
 * One agent connection per sandbox per Kiln instance, opened on first use and shared by every
 * Sandbox handle for that container. A closed connection is forgotten, so the next call
 * reconnects (after a stop/start, or if the agent restarted).
 */
import { AGENT_CALL_TIMEOUT_MS, AGENT_READY_TIMEOUT_MS } from "../defaults.ts";
import type { Engine } from "../engine/engine.ts";
import {
  AgentUnavailableError,
  ConflictError,
  EngineError,
  EngineUnavailableError,
  SandboxNotFoundError,
  SandboxNotRunningError,
} from "../errors.ts";
import { AgentConnection, bridgeCommand } from "./connection.ts";

export class AgentConnections {
  readonly #engine: Engine;
  readonly #open = new Map<string, Promise<AgentConnection>>();

  constructor(engine: Engine) {
    this.#engine = engine;
  }

  get(id: string): Promise<AgentConnection> {
    return this.#get(id);
  }

  /**
   * The first connection to a sandbox this process just created, opened while it starts: over
   * its agent's attached stdin/stdout where the engine offers that (no exec, no relay process, no
   * wait for the socket), else as get() once `started` resolves (an exec needs a running
   * container). Call it right after createContainer, before starting it.
   */
  attach(id: string, started: Promise<void>): Promise<AgentConnection> {
    return this.#get(id, started);
  }

  #get(id: string, started?: Promise<void>): Promise<AgentConnection> {
    let pending = this.#open.get(id);
    if (!pending) {
      pending = this.#connect(id, started);
      this.#open.set(id, pending);
      pending.then(
        (connection) => connection.onClose(() => this.#forget(id, pending)),
        () => this.#forget(id, pending),
      );
    }
    return pending;
  }

  /**
   * Counts as activity for the sandbox's auto-stop clock without opening a connection: a ping
   * when one is already open (calls that go only to the engine, like info(), use this).
   */
  touch(id: string): void {
    this.#open.get(id)?.then(
      (connection) => connection.request({ type: "ping" }, () => true).finished.catch(() => {}),
      () => {},
    );
  }

  /** Closes the connection to one sandbox (before it is stopped or deleted). */
  close(id: string): void {
    const pending = this.#open.get(id);
    this.#open.delete(id);
    pending?.then(
      (c) => c.close(),
      () => {},
    );
  }

  closeAll(): void {
    for (const id of [...this.#open.keys()]) this.close(id);
  }

  #forget(id: string, pending: Promise<AgentConnection> | undefined): void {
    if (this.#open.get(id) === pending) this.#open.delete(id);
  }

  /** Why the connection failed: the engine being down is not "not found". */
  async #inspectAfterFailure(id: string, err: unknown) {
    if (err instanceof EngineUnavailableError) throw err;
    return this.#engine.inspectContainer(id).catch((inspectErr: unknown) => {
      if (inspectErr instanceof EngineUnavailableError) throw inspectErr;
      return undefined;
    });
  }

  async #connect(id: string, started?: Promise<void>): Promise<AgentConnection> {
    let channel: Awaited<ReturnType<Engine["openProcess"]>>;
    try {
      const attached = started === undefined ? undefined : await this.#engine.attachAgent?.(id);
      if (attached === undefined) await started;
      channel = attached ?? (await this.#engine.openProcess(id, bridgeCommand(AGENT_READY_TIMEOUT_MS)));
    } catch (err) {
      const details = await this.#inspectAfterFailure(id, err);
      if (!details) throw new SandboxNotFoundError(id, { cause: err });
      if (details.status !== "running")
        throw new SandboxNotRunningError(id, details.status === "paused" ? "paused" : "stopped", { cause: err });
      if (err instanceof ConflictError || err instanceof EngineError) {
        throw new AgentUnavailableError(`could not reach the agent of sandbox ${id}: ${err.message}`, { cause: err });
      }
      throw err;
    }
    const connection = new AgentConnection(channel);
    try {
      // The bridge waits up to AGENT_READY_TIMEOUT_MS for the socket before hello is even read;
      // over stdio, hello waits in the pipe while the container starts and the agent loads.
      const reply = await connection.call({ type: "hello" }, undefined, {
        deadlineMs: AGENT_READY_TIMEOUT_MS + AGENT_CALL_TIMEOUT_MS,
      });
      if (reply.header.type !== "ok") throw new AgentUnavailableError(`the agent of sandbox ${id} refused hello`);
    } catch (err) {
      connection.close();
      const details = await this.#inspectAfterFailure(id, err);
      if (!details) throw new SandboxNotFoundError(id, { cause: err });
      if (details.status !== "running") throw new SandboxNotRunningError(id, "stopped", { cause: err });
      throw err;
    }
    return connection;
  }
}

/** An engine outage is reported as such, never as "no such sandbox". */

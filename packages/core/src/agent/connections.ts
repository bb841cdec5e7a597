/**
 * One agent connection per sandbox per Kiln instance, opened on first use and shared by every
 * Sandbox handle for that container. A closed connection is forgotten, so the next call
 * reconnects (after a stop/start, or if the agent restarted).
 */
import { AGENT_CALL_TIMEOUT_MS, AGENT_READY_TIMEOUT_MS, DELETE_EXIT_ACK_MS } from "../defaults.ts";
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
  /** The connections of #open that are established (exit() uses only those: it never waits for one). */
  readonly #connected = new Map<string, AgentConnection>();

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
        (connection) => {
          this.#connected.set(id, connection);
          connection.onClose(() => {
            if (this.#connected.get(id) === connection) this.#connected.delete(id);
            this.#forget(id, pending);
          });
        },
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

  /**
   * For a sandbox about to be deleted: asks its agent, over this process's established
   * connection, to end itself (`exit`), and closes the connection once it answered. undefined
   * (and the connection, if any, closed) when none is established: exit() never waits for one.
   * Else the acknowledgement: true once the agent answered `ok`, so its container is stopping
   * by itself; false when it refused (an older image), the connection failed, or no answer came
   * within DELETE_EXIT_ACK_MS.
   */
  exit(id: string): Promise<boolean> | undefined {
    const connection = this.#connected.get(id);
    if (!connection || connection.closed) {
      this.close(id);
      return undefined;
    }
    // Forgotten first, so no new call picks it up; closed only once the exit frame is out.
    this.#open.delete(id);
    this.#connected.delete(id);
    return connection
      .call({ type: "exit" }, undefined, { deadlineMs: DELETE_EXIT_ACK_MS })
      .then(
        (reply) => reply.header.type === "ok",
        () => false,
      )
      .finally(() => connection.close());
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

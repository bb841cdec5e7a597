// Fixtures for integration tests against the real engine. Every sandbox a test makes is
// labelled, deleted afterwards, and its id printed when the test fails.
import { afterAll, inject, onTestFailed } from "vitest";
import type { Engine } from "../src/engine/engine.ts";
import { type CreateSandboxOptions, Kiln, type Sandbox } from "../src/index.ts";
import { testRunLabel } from "./test-run-label.ts";

/**
 * On every sandbox a test makes. The value names this checkout, so the global setup of one
 * checkout's run never deletes the sandboxes of another checkout's tests running beside it.
 */
export const TEST_LABELS = { "test-run": testRunLabel(import.meta.dirname) };

/**
 * The engine under test: "docker" (default), or another engine whose contract run sets
 * KILN_TEST_ENGINE (e.g. "kube-sim") and KILN_TEST_ENGINE_MODULE, a module whose testEngine()
 * makes a fresh engine (packages/kubernetes/vitest.contract.config.ts runs a selection of
 * these files that way). Tests of Docker-only behaviour skip with a reason when it is not "docker".
 */
export const TEST_ENGINE = process.env.KILN_TEST_ENGINE ?? "docker";
const engineModule = process.env.KILN_TEST_ENGINE_MODULE;
const makeEngine: (() => Engine) | undefined = engineModule
  ? ((await import(engineModule)) as { testEngine(): Engine }).testEngine
  : undefined;

/** `new Kiln(options)`, on the engine under test (exactly that on Docker). */
export function newKiln(options: ConstructorParameters<typeof Kiln>[0] = {}): Kiln {
  return makeEngine ? new Kiln({ image: inject("runtimeImage"), engine: makeEngine(), ...options }) : new Kiln(options);
}

export function testKiln(options: ConstructorParameters<typeof Kiln>[0] = {}): Kiln {
  const kiln = newKiln({ image: inject("runtimeImage"), ...options });
  afterAll(() => kiln.close());
  return kiln;
}

const made: Sandbox[] = [];
afterAll(() => deleteTestSandboxes());

/**
 * Deletes the sandboxes this file made with sandbox() (done after the file's tests anyway): for
 * an afterAll that must run once they are gone, since vitest runs after-hooks in reverse order.
 */
export async function deleteTestSandboxes(): Promise<void> {
  await Promise.all(made.splice(0).map((s) => s.delete().catch(() => {})));
}

/** Creates a sandbox that is deleted after the file's tests (or at once with `await using`). */
export async function sandbox(kiln: Kiln, options: CreateSandboxOptions = {}): Promise<Sandbox> {
  const created = await kiln.create({ ...options, labels: { ...TEST_LABELS, ...options.labels } });
  made.push(created);
  try {
    onTestFailed(() => {
      console.error(`sandbox under test: ${created.id}${created.name ? ` (${created.name})` : ""}`);
    });
  } catch {
    // Outside a test (in a beforeAll hook) there is no test to attach the message to.
  }
  return created;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

// Fixtures: a remote Kiln on the server of this project's global setup; sandboxes labelled
// with this checkout, deleted after the file, their id printed when a test fails.
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { type CreateSandboxOptions, Kiln, type Sandbox } from "@kiln/core";
import { afterAll, inject, onTestFailed } from "vitest";

export const TEST_LABELS = {
  "test-run": `kiln-${createHash("sha256")
    .update(resolve(import.meta.dirname, "../.."))
    .digest("hex")
    .slice(0, 10)}`,
};

export function server(): { url: string; apiKey: string } {
  const target = inject("kilnServer");
  if (!target) throw new Error("no Kiln server: run these tests with -c tests/remote/vitest.config.ts");
  return target;
}

export function remoteKiln(): Kiln {
  const kiln = new Kiln(server());
  afterAll(() => kiln.close());
  return kiln;
}

const made: Sandbox[] = [];
afterAll(async () => {
  await Promise.all(made.splice(0).map((s) => s.delete().catch(() => {})));
});

/** A sandbox deleted after the file's tests. */
export async function sandbox(kiln: Kiln, options: CreateSandboxOptions = {}): Promise<Sandbox> {
  const created = await kiln.create({ ...options, labels: { ...TEST_LABELS, ...options.labels } });
  return track(created);
}

export function track(created: Sandbox): Sandbox {
  made.push(created);
  try {
    onTestFailed(() => console.error(`sandbox under test: ${created.id}${created.name ? ` (${created.name})` : ""}`));
  } catch {
    // Outside a test (in a beforeAll hook) there is no test to attach the message to.
  }
  return created;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

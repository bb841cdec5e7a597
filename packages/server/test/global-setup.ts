// Builds (or finds) the runtime image once, and removes sandboxes a crashed run of this
// checkout's server tests left behind.
import { Kiln } from "@kiln/core";
import type { TestProject } from "vitest/node";
import { TEST_RUN } from "./test-run.ts";

export default async function setup(project: TestProject): Promise<void> {
  const kiln = new Kiln();
  project.provide("runtimeImage", await kiln.images.ensure());
  for (const info of await kiln.list({ labels: { "test-run": TEST_RUN } })) {
    // Another run's sweeper may delete it between the list and the get.
    await (await kiln.get(info.id).catch(() => undefined))?.delete().catch(() => {});
  }
  await kiln.close();
}

declare module "vitest" {
  export interface ProvidedContext {
    runtimeImage: string;
  }
}

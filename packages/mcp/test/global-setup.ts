// Builds (or finds) the runtime image once, and removes sandboxes a crashed run of this
// package's tests left behind (only ours: other packages' suites may be running).
import { Kiln } from "@kiln/core";
import type { TestProject } from "vitest/node";
import { TEST_LABELS } from "./labels.ts";

export default async function setup(project: TestProject): Promise<void> {
  const kiln = new Kiln();
  project.provide("runtimeImage", await kiln.images.ensure());
  for (const info of await kiln.list({ labels: TEST_LABELS })) {
    await (await kiln.get(info.id)).delete().catch(() => {});
  }
  await kiln.close();
}

declare module "vitest" {
  export interface ProvidedContext {
    runtimeImage: string;
  }
}

// Builds (or finds) the runtime image once, and removes sandboxes a crashed run of this suite
// left behind. Only this suite's (TEST_LABELS): other packages' suites may be running beside it.
import { Kiln } from "@kiln/core";
import type { TestProject } from "vitest/node";
import { TEST_LABELS } from "./labels.ts";

export default async function setup(project: TestProject): Promise<void> {
  const kiln = new Kiln();
  const tag = await kiln.images.ensure({
    onProgress: (e) => process.stderr.write(`[image] ${e.message.slice(0, 120)}\n`),
  });
  project.provide("runtimeImage", tag);
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

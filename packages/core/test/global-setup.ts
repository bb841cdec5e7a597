// Builds (or finds) the runtime image once before any integration test runs, and removes
// containers a previous crashed test run left behind (labelled with this checkout's test-run).
import type { TestProject } from "vitest/node";
import { Kiln } from "../src/index.ts";
import { testRunLabel } from "./test-run-label.ts";

export default async function setup(project: TestProject): Promise<void> {
  const kiln = new Kiln();
  const tag = await kiln.images.ensure({
    onProgress: (e) => process.stderr.write(`[image] ${e.message.slice(0, 120)}\n`),
  });
  project.provide("runtimeImage", tag);
  for (const info of await kiln.list({ labels: { "test-run": testRunLabel(import.meta.dirname) } })) {
    await (await kiln.get(info.id)).delete().catch(() => {});
  }
  await kiln.close();
}

declare module "vitest" {
  export interface ProvidedContext {
    runtimeImage: string;
  }
}

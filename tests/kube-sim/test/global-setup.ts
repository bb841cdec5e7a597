// Builds (or finds) the Kiln runtime image once, as core's tests do: the sim's pods run it, so
// the processes exec'd into them are the ones a Kiln sandbox has.
import { Kiln } from "@kiln/core";
import type { TestProject } from "vitest/node";

export default async function setup(project: TestProject): Promise<void> {
  const kiln = new Kiln();
  const tag = await kiln.images.ensure({
    onProgress: (e) => process.stderr.write(`[image] ${e.message.slice(0, 120)}\n`),
  });
  project.provide("runtimeImage", tag);
  await kiln.close();
}

declare module "vitest" {
  export interface ProvidedContext {
    runtimeImage: string;
  }
}

// Builds (or finds) the Kiln runtime image once, as core's tests do: the sim's pods run it, so
// the processes exec'd into them are the ones a Kiln sandbox has. Removes what sims of an earlier
// run of these tests (this checkout) left behind when their process died before close().

import { resolve } from "node:path";
import { Kiln } from "@kiln/core";
import type { TestProject } from "vitest/node";
import { sweepKubeSims } from "../src/index.ts";

export default async function setup(project: TestProject): Promise<void> {
  const kiln = new Kiln();
  const tag = await kiln.images.ensure({
    onProgress: (e) => process.stderr.write(`[image] ${e.message.slice(0, 120)}\n`),
  });
  project.provide("runtimeImage", tag);
  await kiln.close();
  const swept = await sweepKubeSims(`kube-sim-tests:${resolve(import.meta.dirname, "..")}`);
  if (swept > 0) process.stderr.write(`[kube-sim] removed ${swept} Docker objects of crashed earlier runs\n`);
}

declare module "vitest" {
  export interface ProvidedContext {
    runtimeImage: string;
  }
}

// The contract run: core's integration tests (a selection) against the Kubernetes engine,
// pointed at kube-sim (a Kubernetes API server backed by this machine's Docker engine).
import { Kiln } from "@kiln/core";
import { type KubeSim, startKubeSim } from "@kiln/kube-sim";
import type { TestProject } from "vitest/node";

export const CONTRACT_NAMESPACE = "kiln-contract";
let sim: KubeSim | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The runtime image is built (or found) by the Docker engine: the sim's nodes are that engine.
  const kiln = new Kiln();
  const tag = await kiln.images.ensure({
    onProgress: (e) => process.stderr.write(`[image] ${e.message.slice(0, 120)}\n`),
  });
  await kiln.close();
  project.provide("runtimeImage", tag);
  sim = await startKubeSim({ namespaces: [CONTRACT_NAMESPACE] });
  project.provide("kubeconfig", sim.kubeconfig);
  return async () => {
    await sim?.close();
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    runtimeImage: string;
    kubeconfig: string;
  }
}

// KILN_TEST_ENGINE_MODULE of the contract run: core's test helpers build every Kiln on this.
import { inject } from "vitest";
import { kubernetes } from "../../src/index.ts";
import { CONTRACT_NAMESPACE } from "./global-setup.ts";

export function testEngine() {
  return kubernetes({ kubeconfig: inject("kubeconfig"), namespace: CONTRACT_NAMESPACE, networkPolicy: "enforced" });
}

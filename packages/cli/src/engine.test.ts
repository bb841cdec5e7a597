import { describe, expect, it } from "vitest";
import { engineFrom } from "./engine.ts";

const kubeconfig = `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "https://127.0.0.1:65531" } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: x, context: { cluster: c, user: u, namespace: ignored } }]
current-context: x
`;

describe("kiln serve --engine", () => {
  it("is Docker unless asked otherwise", async () => {
    expect(await engineFrom({}, {})).toBeUndefined();
    expect(await engineFrom({ engine: "docker" }, { KILN_ENGINE: "kubernetes" })).toBeUndefined();
  });

  it("builds the Kubernetes engine from flags over the environment", { timeout: 60_000 }, async () => {
    const engine = (await engineFrom(
      { engine: "kubernetes", namespace: "from-flag" },
      { KILN_KUBECONFIG: kubeconfig, KILN_K8S_NAMESPACE: "from-env", KILN_K8S_NETWORK_POLICY: "enforced" },
    )) as unknown as { namespace: string; options: { networkPolicy?: string } };
    expect(engine.namespace).toBe("from-flag");
    expect(engine.options.networkPolicy).toBe("enforced");
  });

  it("refuses what it cannot use, naming it", { timeout: 60_000 }, async () => {
    await expect(engineFrom({ engine: "nomad" }, {})).rejects.toThrow(/--engine takes/);
    await expect(engineFrom({ engine: "kubernetes" }, { KILN_KUBECONFIG: kubeconfig })).rejects.toThrow(/--namespace/);
    await expect(
      engineFrom({ engine: "kubernetes", namespace: "n" }, { KILN_K8S_NETWORK_POLICY: "yes" }),
    ).rejects.toThrow(/KILN_K8S_NETWORK_POLICY/);
  });
});

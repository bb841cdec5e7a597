/**
 * `kiln serve --engine kubernetes`: the engine behind the server, from flags over KILN_ENGINE,
 * KILN_KUBECONFIG, KILN_K8S_NAMESPACE, KILN_K8S_NETWORK_POLICY (and KILN_K8S_GVISOR_RUNTIME_CLASS).
 * @kiln/kubernetes is imported only when asked for: the Docker path never loads it.
 */
import type { Engine } from "@kiln/core";

export interface EngineFlags {
  engine?: string;
  kubeconfig?: string;
  namespace?: string;
}

/** undefined: the default Docker engine. */
export async function engineFrom(
  flags: EngineFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Engine | undefined> {
  const kind = flags.engine ?? env.KILN_ENGINE ?? "docker";
  if (kind === "docker") return undefined;
  if (kind !== "kubernetes") throw new Error(`--engine takes "docker" or "kubernetes", got "${kind}"`);
  const namespace = flags.namespace ?? env.KILN_K8S_NAMESPACE;
  if (!namespace)
    throw new Error("--engine kubernetes needs --namespace (or KILN_K8S_NAMESPACE): where its sandboxes live");
  const kubeconfig = flags.kubeconfig ?? env.KILN_KUBECONFIG;
  const policy = env.KILN_K8S_NETWORK_POLICY;
  if (policy !== undefined && policy !== "enforced" && policy !== "unknown") {
    throw new Error(`KILN_K8S_NETWORK_POLICY takes "enforced" or "unknown", got "${policy}"`);
  }
  const { kubernetes } = await import("@kiln/kubernetes");
  return kubernetes({
    namespace,
    ...(kubeconfig ? { kubeconfig } : {}),
    ...(policy ? { networkPolicy: policy } : {}),
    ...(env.KILN_K8S_GVISOR_RUNTIME_CLASS ? { runtimeClasses: { gvisor: env.KILN_K8S_GVISOR_RUNTIME_CLASS } } : {}),
  });
}

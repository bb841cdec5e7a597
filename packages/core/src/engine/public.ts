/**
 * `@kiln/core/engine`: what another engine package (e.g. @kiln/kubernetes) builds on: the
 * Engine interface, Kiln's label keys, the Docker engine (image builds), and the address ranges
 * an egress sandbox never reaches.
 */

export { bridgeCommand } from "../agent/connection.ts";
export { shapeKey } from "../pool/warm-pool.ts";
export { PROXY_PORT, parseNetworkLog, proxyEnv } from "./docker/allow.ts";
export { DockerEngine, type DockerEngineOptions } from "./docker/docker-engine.ts";
export { EGRESS_BLOCKED_V4, EGRESS_BLOCKED_V6, EGRESS_GLOBAL_V6 } from "./docker/egress.ts";
export type * from "./engine.ts";
export * from "./labels.ts";
/** Kiln's egress proxy program (allow-lists), for engines that run it themselves (@kiln/kubernetes). */
export const ALLOW_PROXY_SOURCE = new URL("../../proxy/allow-proxy.mjs", import.meta.url);

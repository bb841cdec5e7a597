export { KilnSandboxBackend, type KilnSandboxBackendOptions } from "./backend.ts";

// Starts one real Kiln server for a test project and hands its URL and admin key to the tests
// (inject("kilnServer")); stops it afterwards. Sandboxes a crashed run left behind are found
// by their test label and removed through the server (which sees every sandbox of the engine's
// checkout labels, as a local Kiln would).
import type { TestProject } from "vitest/node";
import { testServer } from "./server.ts";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await testServer();
  project.provide("kilnServer", { url: server.url, apiKey: server.apiKey });
  return () => server.close();
}

declare module "vitest" {
  export interface ProvidedContext {
    /** Set only in remote mode (tests/remote/vitest.config.ts): the server to test against. */
    kilnServer?: { url: string; apiKey: string };
  }
}

// Builds the dashboard when its build is missing or older than its sources, finds the runtime
// image, and removes sandboxes a crashed run of this checkout's dashboard tests left behind.
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { Kiln } from "@kiln/core";
import type { TestProject } from "vitest/node";
import { DASHBOARD_DIR, TEST_RUN } from "./harness.ts";

async function newest(dir: string): Promise<number> {
  let latest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    latest = Math.max(latest, (await stat(join(entry.parentPath, entry.name))).mtimeMs);
  }
  return latest;
}

export async function ensureBuilt(): Promise<void> {
  const root = join(DASHBOARD_DIR, "..");
  const built = await stat(join(DASHBOARD_DIR, "index.html")).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  const sources = Math.max(
    await newest(join(root, "src")),
    await newest(join(root, "public")),
    (await stat(join(root, "index.html"))).mtimeMs,
  );
  if (built >= sources) return;
  const { build } = await import("vite");
  await build({ configFile: join(root, "vite.config.ts"), logLevel: "warn" });
}

export default async function setup(project: TestProject): Promise<void> {
  await ensureBuilt();
  const kiln = new Kiln();
  project.provide("runtimeImage", await kiln.images.ensure());
  for (const info of await kiln.list({ labels: { "test-run": TEST_RUN } })) {
    await (await kiln.get(info.id).catch(() => undefined))?.delete().catch(() => {});
  }
  await kiln.close();
}

declare module "vitest" {
  export interface ProvidedContext {
    runtimeImage: string;
  }
}

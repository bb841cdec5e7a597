// A real Kiln server (startServer, private data dir, loopback port) serving the built dashboard,
// and headless Chromium driven by playwright-core. Shared by the browser tests and the
// screenshot script.
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Kiln } from "@kiln/core";
import { type RunningServer, startServer } from "@kiln/server";
import { type Browser, chromium, type Page } from "playwright-core";

export const DASHBOARD_DIR = resolve(import.meta.dirname, "../dist");
/** The label value every test sandbox of this checkout carries (the server tests' rule). */
export const TEST_RUN = `kiln-${createHash("sha256")
  .update(resolve(import.meta.dirname, "../../.."))
  .digest("hex")
  .slice(0, 10)}`;
export const CHROMIUM = process.env.KILN_CHROMIUM ?? "/usr/bin/chromium";

export interface Harness {
  url: string;
  key: string;
  readonly server: RunningServer;
  kiln: Kiln;
  browser: Browser;
  /** JSON over HTTP with the admin key (or another), for setting up and checking. */
  // biome-ignore lint/suspicious/noExplicitAny: test bodies are checked field by field
  api(method: string, path: string, body?: unknown, key?: string): Promise<{ status: number; body: any }>;
  /** Stops the server and starts a new one on the same port and data dir (sessions survive). */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(options: { image?: string; allowPrivateHooks?: boolean } = {}): Promise<Harness> {
  const dataDir = await mkdtemp(join(tmpdir(), "kiln-dashboard-test-"));
  const kiln = new Kiln(options.image ? { image: options.image } : {});
  const logs: string[] = [];
  const hooks = options.allowPrivateHooks ? { allowPrivateHooks: true } : {};
  let server = await startServer({ port: 0, dataDir, kiln, log: (l) => logs.push(l), ...hooks });
  const key = server.createdAdminKey as string;
  const port = Number(new URL(server.url).port);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Root in a container: Chromium's own sandbox needs user namespaces it may not get.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  return {
    url: server.url,
    key,
    get server() {
      return server;
    },
    kiln,
    browser,
    async api(method, path, body, k = key) {
      const res = await fetch(server.url + path, {
        method,
        headers: {
          authorization: `Bearer ${k}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    async restart() {
      await server.close();
      server = await startServer({ port, dataDir, kiln, log: (l) => logs.push(l), ...hooks });
    },
    async close() {
      await browser.close().catch(() => {});
      for (const info of await kiln.list({ labels: { "test-run": TEST_RUN } }).catch(() => [])) {
        await (await kiln.get(info.id).catch(() => undefined))?.delete().catch(() => {});
      }
      await server.close();
      await kiln.close();
      await rm(dataDir, { recursive: true, force: true });
      const errors = logs.filter((l) => l.startsWith("error"));
      if (errors.length > 0) console.error(errors.join("\n"));
    },
  };
}

export async function signIn(page: Page, url: string, key: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Sandboxes" }).waitFor();
}

/** The terminal's visible lines (xterm's DOM renderer rows), trailing blanks trimmed. */
export async function screenLines(page: Page): Promise<string[]> {
  return page.$$eval(".xterm-rows > div", (rows) => rows.map((r) => (r.textContent ?? "").replace(/\s+$/, "")));
}

/** Waits until some line of the terminal satisfies the test; returns the lines then. */
export async function waitForLine(page: Page, test: (line: string) => boolean, timeoutMs = 30_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let lines: string[] = [];
  while (Date.now() < deadline) {
    lines = await screenLines(page);
    if (lines.some(test)) return lines;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no terminal line matched within ${timeoutMs} ms; the screen:\n${lines.join("\n")}`);
}

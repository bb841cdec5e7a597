// The dashboard's other pages in Chromium against a real server and engine: keyboard-only
// sign-in, the label filter, processes and their logs, preview links, snapshots (taken, used by
// the create dialog, deleted), volumes, API keys (shown once), the audit log (filter, follow
// live), webhooks and their deliveries, quotas and usage, the phone layout.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type Harness, startHarness, TEST_RUN } from "./harness.ts";

let h: Harness;
let page: Page;
const run = Math.random().toString(36).slice(2, 7);
const snapshot = `dash-snap-${run}`;
const volume = `dash-vol-${run}`;
let a: string;
let b: string;
let receiver: Server;
const received: string[] = [];

beforeAll(async () => {
  h = await startHarness({ image: inject("runtimeImage"), allowPrivateHooks: true });
  const labels = { "test-run": TEST_RUN };
  a = (await h.api("POST", "/v1/sandboxes", { name: `a-${run}`, labels: { ...labels, team: `a${run}` } })).body.id;
  b = (await h.api("POST", "/v1/sandboxes", { name: `b-${run}`, labels: { ...labels, team: `b${run}` } })).body.id;
  receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      received.push(body);
      res.end("ok");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  page = await (await h.browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
});

afterAll(async () => {
  await h?.api("DELETE", `/v1/snapshots/${snapshot}`).catch(() => {});
  await h?.api("DELETE", `/v1/volumes/${volume}`).catch(() => {});
  receiver?.close();
  await h?.close();
});

describe("the dashboard's pages", () => {
  it("signs in with the keyboard alone", async () => {
    await page.goto(h.url);
    await page.getByLabel("API key").waitFor();
    await page.keyboard.press("Tab");
    await expect(page.evaluate("document.activeElement.id")).resolves.toBe("apikey");
    await page.keyboard.type(h.key);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Sandboxes" }).waitFor();
  });

  it("filters the live list by label", async () => {
    await page.locator(`tr[data-id="${a}"]`).waitFor();
    await page.getByLabel("Filter by label").fill(`team=a${run}`);
    await expect.poll(() => page.locator("tr[data-id]").count()).toBe(1);
    await expect(page.locator(`tr[data-id="${a}"]`).isVisible()).resolves.toBe(true);
    await page.getByLabel("Filter by label").fill("team=nobody-has-this");
    await page.getByText("No sandbox has these labels.").waitFor();
    await page.getByLabel("Filter by label").fill("");
    // Live: a sandbox stopped elsewhere shows its new state without a reload.
    await h.api("POST", `/v1/sandboxes/${b}/stop`);
    await page.locator(`tr[data-id="${b}"] .state-stopped`).waitFor({ timeout: 15_000 });
  });

  it("starts a background process and follows its logs", async () => {
    await page.goto(`${h.url}/sandboxes/${a}/processes`);
    await page
      .getByLabel("Command")
      .fill("for i in 1 2 3; do echo tick-$i; sleep 0.3; done; python3 -m http.server 8000");
    await page.getByRole("button", { name: "Start" }).click();
    await page.locator(".logs pre").filter({ hasText: "tick-3" }).waitFor({ timeout: 20_000 });
    await expect(page.getByRole("table", { name: "Processes" }).textContent()).resolves.toContain("running");
  });

  it("makes a preview link that opens the sandbox's port", async () => {
    await page.getByRole("link", { name: "Previews" }).click();
    await page.getByLabel("Port").fill("8000");
    await page.getByRole("button", { name: "Get link" }).click();
    const link = page.locator("ul.plain a").first();
    await link.waitFor();
    const href = (await link.getAttribute("href")) as string;
    expect(href).toMatch(new RegExp(`^${h.url}/preview/`));
    expect(await link.getAttribute("rel")).toContain("noopener");
    await expect.poll(async () => (await fetch(href)).status, { timeout: 20_000 }).toBe(200);
  });

  it("takes a snapshot, creates a sandbox from it in the dialog, and deletes it", async () => {
    await h.api("POST", `/v1/sandboxes/${a}/exec`, { command: "echo from-snapshot > /workspace/marker.txt" });
    await page.getByRole("link", { name: "Snapshots" }).nth(1).click();
    await page.getByLabel("Snapshot name").fill(snapshot);
    await page.getByRole("button", { name: "Take snapshot" }).click();
    await page.getByText(`Made: ${snapshot}`).waitFor({ timeout: 90_000 });

    await page.getByRole("link", { name: "Sandboxes", exact: true }).click();
    await page.getByRole("button", { name: "New sandbox" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Snapshot").check();
    await dialog.locator("select[name=snapshot]").selectOption(snapshot);
    await dialog.getByLabel("Labels").fill(`test-run=${TEST_RUN}`);
    await dialog.getByRole("button", { name: "Create" }).click();
    await page.waitForURL(/\/sandboxes\/[^/]+$/, { timeout: 90_000 });
    const made = decodeURIComponent(new URL(page.url()).pathname.split("/")[2] as string);
    const marker = await fetch(`${h.url}/v1/sandboxes/${made}/files?path=/workspace/marker.txt`, {
      headers: { authorization: `Bearer ${h.key}` },
    });
    expect(await marker.text()).toBe("from-snapshot\n");
    // A snapshot in use cannot go: the sandbox made from it goes first.
    expect((await h.api("DELETE", `/v1/sandboxes/${made}`)).status).toBe(204);

    await page.getByRole("link", { name: "Snapshots", exact: true }).first().click();
    const row = page.getByRole("row").filter({ hasText: snapshot });
    await row.waitFor();
    await row.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await row.waitFor({ state: "detached", timeout: 30_000 });
  });

  it("creates and deletes a volume", async () => {
    await page.getByRole("link", { name: "Volumes" }).click();
    await page.getByLabel("New volume").fill(volume);
    await page.getByRole("button", { name: "Create" }).click();
    const row = page.getByRole("row").filter({ hasText: volume });
    await row.waitFor();
    await row.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await row.waitFor({ state: "detached" });
    expect((await h.api("GET", "/v1/volumes")).body.volumes.some((v: { name: string }) => v.name === volume)).toBe(
      false,
    );
  });

  it("creates an API key and shows it once", async () => {
    await page.getByRole("link", { name: "API keys" }).click();
    await page.getByRole("button", { name: "New key" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Name").fill(`ui-${run}`);
    await dialog.getByRole("button", { name: "Create key" }).click();
    const shown = page.getByTestId("new-key");
    await shown.waitFor();
    const key = await shown.inputValue();
    expect(key).toMatch(/^kiln_/);
    const keys = (await h.api("GET", "/v1/keys")).body.keys as { name: string; scopes: string[] }[];
    expect(keys.find((k) => k.name === `ui-${run}`)?.scopes).toEqual(["sandboxes:read"]);
    expect((await h.api("GET", "/v1/sandboxes", undefined, key)).status).toBe(200);
    await page.getByRole("button", { name: "Done" }).click();
    await expect(page.content()).resolves.not.toContain(key);
  });

  it("filters the audit log and follows it live", async () => {
    await page.getByRole("link", { name: "Audit log" }).click();
    await page.getByRole("table", { name: "Audit events" }).waitFor();
    await page.getByLabel("Action").fill("volume.create");
    await expect.poll(() => page.locator("table[aria-label='Audit events'] tbody tr").count()).toBe(1);
    await page.getByLabel("Action").fill("");
    await page.getByLabel("Sandbox").fill(b);
    await page.locator("tbody tr").filter({ hasText: "sandbox.stop" }).waitFor();
    await page.getByLabel("Sandbox").fill("");
    await page.getByLabel("Action").fill("key.create");
    const before = await page.locator("tbody tr").count();
    await h.api("POST", "/v1/keys", { name: `live-${run}`, scopes: [] });
    await expect.poll(() => page.locator("tbody tr").count(), { timeout: 10_000 }).toBe(before + 1);
  });

  it("adds a webhook (secret shown once) and lists its deliveries", async () => {
    await page.getByRole("link", { name: "Webhooks" }).click();
    const port = (receiver.address() as AddressInfo).port;
    await page.getByLabel("Receiver URL").fill(`http://127.0.0.1:${port}/hook`);
    await page.getByRole("button", { name: "Add webhook" }).click();
    await expect(page.getByLabel("Signing secret").inputValue()).resolves.toMatch(/^whsec_/);
    await h.api("POST", `/v1/sandboxes/${b}/start`);
    await page.getByRole("button", { name: "Deliveries" }).click();
    await page.getByRole("table", { name: "Deliveries" }).getByText("delivered").waitFor({ timeout: 20_000 });
    expect(received.some((r) => r.includes('"sandbox.started"'))).toBe(true);
  });

  it("shows usage against the organisation's quotas", async () => {
    await h.api("PUT", "/v1/orgs/default/quotas", { maxSandboxes: 50 });
    await page.getByRole("link", { name: "Quotas" }).click();
    await page.getByText(/Sandboxes \(running or stopped\)/).waitFor();
    await expect(page.locator(".meters").textContent()).resolves.toMatch(/of 50/);
  });

  it("folds the navigation into a menu on a phone", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await expect(page.getByRole("link", { name: "Audit log" }).isVisible()).resolves.toBe(false);
    await page.getByRole("button", { name: "Menu" }).click();
    await page.getByRole("link", { name: "Audit log" }).click();
    await page.getByRole("heading", { name: "Audit log" }).waitFor();
    await expect(page.getByRole("link", { name: "Volumes" }).isVisible()).resolves.toBe(false);
  });
});

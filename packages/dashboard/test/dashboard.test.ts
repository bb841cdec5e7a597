// The dashboard in a real browser (headless Chromium) against a real server and the real engine:
// sign-in, the live list, the create dialog, the web terminal (typing, reading the screen,
// resizing), files (upload, download), a code cell with a chart, escaping of hostile names and
// labels, key revocation ending a session, sign-out.
import { readFile } from "node:fs/promises";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type Harness, signIn, startHarness, TEST_RUN, waitForLine } from "./harness.ts";

let h: Harness;
let context: BrowserContext;
let page: Page;
let sandboxId: string;
const name = `dash-${Math.random().toString(36).slice(2, 8)}`;
const hostileLabel = "<img src=x onerror=window.__kilnXss=1>";
const hostileFile = "<img src=x onerror=window.__kilnXss=2>.txt";

beforeAll(async () => {
  h = await startHarness({ image: inject("runtimeImage") });
  context = await h.browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  page = await context.newPage();
  page.on("pageerror", (err) => console.error(`page error: ${err.message}`));
});

afterAll(async () => {
  await h?.close();
});

describe("the dashboard in Chromium", () => {
  it("refuses a wrong key and stays on the sign-in page", async () => {
    await page.goto(h.url);
    await page.getByLabel("API key").fill("kiln_this-is-not-a-key-0123456789");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert").textContent()).resolves.toContain("UNAUTHORIZED");
    await expect(page.getByLabel("API key").isVisible()).resolves.toBe(true);
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === "kiln_session")).toBeUndefined();
  });

  it("signs in with a key into an HttpOnly, SameSite=Strict session cookie that scripts cannot read", async () => {
    await signIn(page, h.url, h.key);
    const cookie = (await context.cookies()).find((c) => c.name === "kiln_session");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/" });
    expect(cookie?.value).not.toContain(h.key);
    await expect(page.evaluate(() => document.cookie)).resolves.not.toContain("kiln_session");
    await expect(page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }))).resolves.not.toContain(
      h.key,
    );
  });

  it("creates a sandbox from the dialog, with a hostile label shown as text", async () => {
    await page.getByRole("button", { name: "New sandbox" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Name").fill(name);
    await dialog.getByLabel("Labels").fill(`test-run=${TEST_RUN}, note=${hostileLabel}`);
    await dialog.getByLabel("Auto-stop after idle").fill("30m");
    await dialog.getByRole("button", { name: "Create" }).click();
    await page.waitForURL(/\/sandboxes\/[^/]+$/, { timeout: 60_000 });
    sandboxId = decodeURIComponent(new URL(page.url()).pathname.split("/")[2] as string);
    const info = await h.api("GET", `/v1/sandboxes/${sandboxId}`);
    expect(info.body).toMatchObject({ name, state: "running", labels: { "test-run": TEST_RUN, note: hostileLabel } });
    await page.getByText(`note=${hostileLabel}`).first().waitFor();
    // The list shows it (live: no reload), the label as text, and no injected element ran.
    await page.getByRole("link", { name: "← Sandboxes" }).click();
    await page.locator(`tr[data-id="${sandboxId}"]`).waitFor();
    await expect(page.locator(`tr[data-id="${sandboxId}"] .label`).first().textContent()).resolves.toBe(
      `note=${hostileLabel}`,
    );
    await expect(page.locator("img[src=x]").count()).resolves.toBe(0);
    await expect(page.evaluate(() => (window as unknown as { __kilnXss?: number }).__kilnXss)).resolves.toBeUndefined();
    await page.getByRole("link", { name }).click();
  });

  it("runs commands in the web terminal and reads 42 back from the screen", async () => {
    await page.getByRole("status").filter({ hasText: "Connected" }).waitFor({ timeout: 30_000 });
    await page.locator(".xterm").click();
    await page.keyboard.type("echo hello; python3 -c 'print(6*7)'\n");
    const lines = await waitForLine(page, (l) => l.trim() === "42");
    expect(lines.some((l) => l.trim() === "hello")).toBe(true);
  });

  it("resizes the terminal's PTY with the window", async () => {
    const size = async () => {
      const marker = `SIZE${Math.random().toString(36).slice(2, 6)}`;
      await page.keyboard.type(`clear; echo ${marker} $(stty size)\n`);
      const lines = await waitForLine(page, (l) => new RegExp(`^${marker} \\d+ \\d+$`).test(l.trim()));
      const line = lines.find((l) => l.trim().startsWith(`${marker} `)) as string;
      const [, rows, cols] = line.trim().split(" ").map(Number);
      return { rows: rows as number, cols: cols as number };
    };
    const before = await size();
    expect(before.cols).toBeGreaterThan(80);
    await page.setViewportSize({ width: 760, height: 700 });
    // The fit follows the window; the PTY follows the fit.
    await expect.poll(async () => (await size()).cols, { timeout: 20_000, interval: 500 }).toBeLessThan(before.cols);
    const after = await size();
    const shown = await page.evaluate(() => {
      const rows = document.querySelectorAll(".xterm-rows > div").length;
      return rows;
    });
    expect(after.rows).toBe(shown);
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it("reconnects the terminal after the server restarts, with the scrollback", async () => {
    await page.keyboard.type("echo before-restart-$((40+2))\n");
    await waitForLine(page, (l) => l.trim() === "before-restart-42");
    await h.restart();
    await page.getByRole("status").filter({ hasText: "Connected" }).waitFor({ timeout: 30_000 });
    // The screen came back from the server's scrollback, and the same shell still answers.
    await waitForLine(page, (l) => l.trim() === "before-restart-42");
    await page.locator(".xterm").click();
    await page.keyboard.type("echo after-restart-$((40+3))\n");
    const lines = await waitForLine(page, (l) => l.trim() === "after-restart-43");
    expect(lines.filter((l) => l.trim() === "before-restart-42")).toHaveLength(1);
  });

  it("uploads a file and downloads it again, its hostile name shown as text", async () => {
    await page.getByRole("link", { name: "Files" }).click();
    await page.getByRole("table", { name: "Files in /workspace" }).waitFor();
    const content = `uploaded from the browser ${Date.now()}\n`;
    await page
      .locator('input[data-testid="upload"]')
      .setInputFiles({ name: hostileFile, mimeType: "text/plain", buffer: Buffer.from(content) });
    const row = page.locator(`tr[data-name="${hostileFile}"]`);
    await row.waitFor({ timeout: 30_000 });
    const inSandbox = await h.api(
      "GET",
      `/v1/sandboxes/${sandboxId}/files/stat?path=${encodeURIComponent(`/workspace/${hostileFile}`)}`,
    );
    expect(inSandbox.body.size).toBe(Buffer.byteLength(content));
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      row.getByRole("link", { name: /Download/ }).click(),
    ]);
    expect(await readFile((await download.path()) as string, "utf8")).toBe(content);
    await expect(page.locator("img[src=x]").count()).resolves.toBe(0);
    await expect(page.evaluate(() => (window as unknown as { __kilnXss?: number }).__kilnXss)).resolves.toBeUndefined();
  });

  it("opens, edits and saves a text file", async () => {
    await page.locator(`tr[data-name="${hostileFile}"]`).getByRole("button", { name: hostileFile }).click();
    const editor = page.getByLabel(`Contents of ${hostileFile}`);
    await expect.poll(() => editor.inputValue()).toContain("uploaded from the browser");
    await editor.fill("edited in the dashboard\n");
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByRole("status").filter({ hasText: "Saved" }).waitFor();
    const res = await fetch(
      `${h.url}/v1/sandboxes/${sandboxId}/files?path=${encodeURIComponent(`/workspace/${hostileFile}`)}`,
      { headers: { authorization: `Bearer ${h.key}` } },
    );
    expect(await res.text()).toBe("edited in the dashboard\n");
    await page.getByRole("button", { name: "← Back" }).click();
  });

  it("runs a code cell that draws a matplotlib chart and shows the image", async () => {
    await page.getByRole("link", { name: "Code" }).click();
    await expect(page.getByLabel("Code").inputValue()).resolves.toContain("matplotlib");
    await page.getByRole("button", { name: "Run", exact: true }).click();
    const img = page.locator("img.result-img");
    await img.waitFor({ timeout: 90_000 }).catch(async (err) => {
      throw new Error(`${(err as Error).message}\nthe cell showed: ${await page.locator(".cell").textContent()}`);
    });
    await expect(img.getAttribute("src")).resolves.toMatch(/^data:image\/png;base64,/);
    await expect.poll(() => img.evaluate((el) => (el as HTMLImageElement).naturalWidth)).toBeGreaterThan(100);
    await page.locator('[data-status="ok"]').waitFor();
  });

  it("renders HTML output in a sandboxed frame where its scripts do not run", async () => {
    await page
      .getByLabel("Code")
      .fill(
        "class Page:\n    def _repr_html_(self):\n        return '<table><tr><td>cell</td></tr></table><img src=x onerror=\"parent.__kilnXss=3\"><script>parent.__kilnXss=4</script>'\nPage()",
      );
    await page.getByRole("button", { name: "Run", exact: true }).click();
    await page.locator("iframe.result-html").waitFor({ timeout: 60_000 });
    await page.locator('[data-status="ok"]').waitFor();
    const frame = page.locator("iframe.result-html");
    await expect(frame.getAttribute("sandbox")).resolves.toBe("");
    await expect(page.frameLocator("iframe.result-html").locator("td").textContent()).resolves.toBe("cell");
    await expect(page.evaluate(() => (window as unknown as { __kilnXss?: number }).__kilnXss)).resolves.toBeUndefined();
  });

  it("signs a session out when its key is revoked", async () => {
    const made = await h.api("POST", "/v1/keys", { name: "to-revoke", scopes: ["*"] });
    expect(made.status).toBe(201);
    const other = await h.browser.newContext();
    try {
      const p2 = await other.newPage();
      await signIn(p2, h.url, made.body.key);
      // Revoke it from the first session's Keys page.
      await page.getByRole("link", { name: "API keys" }).click();
      const row = page.locator(`tr[data-key="${made.body.id}"]`);
      await row.getByRole("button", { name: "Revoke" }).click();
      await page.getByRole("dialog").getByRole("button", { name: "Revoke" }).click();
      await row.getByText(/revoked/).waitFor();
      // The other session's next call (the list polls) gets 401: back to the sign-in page.
      await p2.getByLabel("API key").waitFor({ timeout: 15_000 });
      const status = await p2.evaluate(async () => (await fetch("/v1/session")).status);
      expect(status).toBe(401);
    } finally {
      await other.close();
    }
  });

  it("deletes the sandbox after a confirmation", async () => {
    await page.getByRole("link", { name: "Sandboxes" }).first().click();
    const row = page.locator(`tr[data-id="${sandboxId}"]`);
    await row.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await row.waitFor({ state: "detached", timeout: 30_000 });
    expect((await h.api("GET", `/v1/sandboxes/${sandboxId}`)).status).toBe(404);
  });

  it("signs out: the cookie is cleared and the API answers 401", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API key").waitFor();
    expect((await context.cookies()).find((c) => c.name === "kiln_session")).toBeUndefined();
    await expect(page.evaluate(async () => (await fetch("/v1/sandboxes")).status)).resolves.toBe(401);
  });
});

// Screenshots of the dashboard's main pages for the docs: docs/screenshots/*.png.
// Run: pnpm --filter @kiln/dashboard screenshots  (needs the build, Chromium and the engine).
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { ensureBuilt } from "./global-setup.ts";
import { signIn, startHarness, TEST_RUN, waitForLine } from "./harness.ts";

const OUT = resolve(import.meta.dirname, "../../../docs/screenshots");

await ensureBuilt();
await mkdir(OUT, { recursive: true });
const h = await startHarness();
try {
  // The engine may hold other sandboxes (other checkouts' tests): the screenshots filter by this label.
  const labels = { "test-run": TEST_RUN, demo: "screenshots", team: "ml" };
  const made = await h.api("POST", "/v1/sandboxes", { name: "analysis", labels, autoStopMs: 1_800_000 });
  if (made.status !== 201) throw new Error(`create answered ${made.status}: ${JSON.stringify(made.body)}`);
  const id = made.body.id as string;
  await h.api("POST", "/v1/sandboxes", { name: "web-app", language: "javascript", labels: { ...labels, team: "web" } });
  const stopped = await h.api("POST", "/v1/sandboxes", { name: "nightly-etl", labels: { ...labels, team: "data" } });
  await h.api("POST", `/v1/sandboxes/${stopped.body.id}/stop`);
  await h.api("POST", `/v1/sandboxes/${id}/exec`, {
    command: "mkdir -p data && printf 'x,y\\n1,1\\n2,4\\n3,9\\n' > data/squares.csv && echo 'print(\"hi\")' > main.py",
  });
  await h.api("POST", "/v1/keys", { name: "ci", scopes: ["sandboxes:read", "sandboxes:exec"] });

  const context = await h.browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const shot = async (name: string) => {
    await page.evaluate("scrollTo(0, 0)");
    await page.screenshot({ path: join(OUT, `${name}.png`) });
  };

  await page.goto(h.url);
  await page.getByLabel("API key").waitFor();
  await shot("sign-in");
  await signIn(page, h.url, h.key);
  await page.getByLabel("Filter by label").fill("demo=screenshots");
  await page.locator("tr[data-id]").nth(2).waitFor();
  await page.waitForFunction(() => document.querySelectorAll("tr[data-id]").length === 3);
  await shot("sandboxes");

  await page.getByRole("button", { name: "New sandbox" }).click();
  await page.getByRole("dialog").getByLabel("Name").fill("experiment");
  await page.getByRole("dialog").getByLabel("Labels").fill("team=ml, purpose=demo");
  await shot("create-dialog");
  await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();

  await page.goto(`${h.url}/sandboxes/${id}/terminal`);
  await page.getByRole("status").filter({ hasText: "Connected" }).waitFor();
  await page.locator(".xterm").click();
  await page.keyboard.type("ls --color=always -la; python3 -c 'print(6*7)'\n");
  await waitForLine(page, (l) => l.trim() === "42");
  await page.keyboard.type("printf '\\e[1;32mgreen\\e[0m \\e[1;34mblue\\e[0m \\e[1;33myellow\\e[0m\\n'\n");
  await waitForLine(page, (l) => l.includes("green blue yellow"));
  await shot("terminal");

  await page.getByRole("link", { name: "Files" }).click();
  await page.locator('tr[data-name="data"]').waitFor();
  await shot("files");

  await page.getByRole("link", { name: "Code" }).click();
  await page.getByRole("button", { name: "Run", exact: true }).click();
  await page.locator("img.result-img").waitFor({ timeout: 90_000 });
  await page.locator("[data-status]").waitFor();
  await shot("code-cell");

  await page.getByRole("link", { name: "API keys" }).click();
  await page.locator("tr[data-key]").nth(1).waitFor();
  await shot("keys");

  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByRole("table", { name: "Audit events" }).waitFor();
  await shot("audit");

  await page.getByRole("link", { name: "Quotas" }).click();
  await page.locator(".meters").waitFor();
  await shot("quotas");

  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${h.url}/sandboxes?label=demo=screenshots`);
  await page.waitForFunction(() => document.querySelectorAll("tr[data-id]").length === 3);
  await shot("phone-sandboxes");
  await context.close();
  console.log(`screenshots written to ${OUT}`);
} finally {
  await h.close();
}

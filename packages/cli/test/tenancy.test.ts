// kiln orgs, kiln keys and kiln audit through the kiln binary against a real `kiln serve`
// (a child process on a free port with a temp data dir).
import { spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BIN,
  baseEnv,
  expectOneLineError,
  kiln,
  kilnJson,
  type RunOptions,
  type ServeChild,
  startKilnServe,
} from "./helpers.ts";

let server: ServeChild | undefined;
let url: string;
let adminKey: string;
let dataDir: string;

const remote = (args: string[], options: RunOptions = {}) =>
  kiln(args, { ...options, env: { KILN_URL: url, KILN_API_KEY: adminKey, ...options.env } });
const remoteJson = <T>(args: string[], options: RunOptions = {}) =>
  kilnJson<T>(args, { ...options, env: { KILN_URL: url, KILN_API_KEY: adminKey, ...options.env } });

beforeAll(async () => {
  dataDir = join(await mkdtemp(join(tmpdir(), "kiln-cli-tenancy-")), "data");
  server = await startKilnServe(dataDir);
  url = server.url;
  adminKey = server.adminKey;
});

afterAll(async () => {
  await server?.stop();
});

describe("kiln orgs and kiln keys", () => {
  it("make an organisation with quotas and a scoped key for it; the key is printed once and revocable", async () => {
    const made = await remote(["orgs", "create", "acme", "--max-sandboxes", "2", "--creates-per-minute", "10"]);
    expect(made.code, made.stderr).toBe(0);
    const orgId = made.stdout.trim();
    expect(orgId).toMatch(/^org_/);
    const { orgs } = await remoteJson<{ orgs: { id: string; quotas: object }[] }>(["orgs", "ls"]);
    expect(orgs.find((o) => o.id === orgId)?.quotas).toEqual({ maxSandboxes: 2, createsPerMinute: 10 });
    const table = await remote(["orgs", "ls"]);
    expect(table.stdout).toMatch(/acme\s+maxSandboxes=2,createsPerMinute=10/);
    const changed = await remoteJson<{ quotas: object }>(["orgs", "quotas", orgId, "--max-cpus", "4"]);
    expect(changed.quotas).toEqual({ maxSandboxes: 2, createsPerMinute: 10, maxCpus: 4 });

    const key = await remote([
      "keys",
      "create",
      "reader",
      "--org",
      orgId,
      "--scope",
      "sandboxes:read",
      "--expires",
      "1h",
    ]);
    expect(key.code, key.stderr).toBe(0);
    const secret = key.stdout.trim();
    expect(secret).toMatch(/^kiln_[A-Za-z0-9_-]{43}$/);
    expect(key.stderr).toMatch(/shown once/);
    const { keys } = await remoteJson<{ keys: { id: string; name: string; scopes: string[]; expiresAt?: string }[] }>([
      "keys",
      "ls",
      "--org",
      orgId,
    ]);
    const row = keys.find((k) => k.name === "reader");
    expect(row?.scopes).toEqual(["sandboxes:read"]);
    expect(row?.expiresAt).toBeDefined();
    expect(JSON.stringify(keys)).not.toContain(secret);

    // The new key works, within its scope only.
    expect((await kiln(["ls", "--json"], { env: { KILN_URL: url, KILN_API_KEY: secret } })).code).toBe(0);
    const denied = await kiln(["keys", "create", "more", "--scope", "*"], {
      env: { KILN_URL: url, KILN_API_KEY: secret },
    });
    expectOneLineError(denied, 1, /keys:write.*FORBIDDEN/);

    const revoked = await remote(["keys", "revoke", row?.id as string]);
    expect(revoked.stdout.trim()).toBe(row?.id);
    const refused = await kiln(["ls"], { env: { KILN_URL: url, KILN_API_KEY: secret } });
    expectOneLineError(refused, 1, /revoked/);
  });

  it("need a server", async () => {
    expectOneLineError(await kiln(["keys", "ls", "--local"]), 2, /talks to a Kiln server/);
  });
});

describe("kiln audit", () => {
  it("shows the log, follows it with -f, and verifies the chain (exit 1 once a row is edited)", async () => {
    await remote(["keys", "create", "audit-one", "--scope", "sandboxes:read"]);
    const { events } = await remoteJson<{ events: { action: string; outcome: string }[] }>(["audit"]);
    expect(events.map((e) => e.action)).toContain("key.create");
    const text = await remote(["audit", "-n", "5"]);
    expect(text.stdout).toMatch(/key\.create \S+ ok 201 key_/);

    // -f: a new event appears while it runs.
    let seen = "";
    const follow = spawn(process.execPath, [BIN, "audit", "-f", "--interval", "200"], {
      env: baseEnv({ KILN_URL: url, KILN_API_KEY: adminKey }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    follow.stdout.setEncoding("utf8").on("data", (c: string) => {
      seen += c;
    });
    try {
      // Its backlog first (it holds audit-one's key.create, above): only what comes after that was
      // followed. (A fixed 1.5 s wait here let a follower slower to start, on a loaded machine,
      // print the new event in its backlog and pass without following anything.)
      const started = Date.now() + 60_000;
      while (!seen.includes("key.create") && Date.now() < started) await new Promise((r) => setTimeout(r, 100));
      expect(seen).toMatch(/key\.create/);
      const before = seen.length;
      await remote(["keys", "create", "followed", "--scope", "sandboxes:read"]);
      const deadline = Date.now() + 15_000;
      while (!seen.slice(before).includes("key.create") && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(seen.slice(before)).toMatch(/key\.create \S+ ok 201/);
    } finally {
      follow.kill("SIGTERM");
    }

    const ok = await remote(["audit", "--verify"]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^ok: \d+ events, the chain is intact/);

    const db = new DatabaseSync(join(dataDir, "kiln.db"));
    const first = db.prepare("SELECT MIN(seq) AS seq FROM audit_events WHERE org_id = 'default'").get() as {
      seq: number;
    };
    db.prepare("UPDATE audit_events SET status = 200 WHERE seq = ?").run(first.seq);
    db.close();
    expectOneLineError(await remote(["audit", "--verify"]), 1, new RegExp(`broken at event ${first.seq}`));
  });
});

describe("kiln serve with hooks", () => {
  it("exits 1 when KILN_ADMISSION_URL is a private address, saying so", async () => {
    const run = await kiln(["serve", "--port", "0", "--data-dir", join(dataDir, "..", "hooks")], {
      env: { KILN_ADMISSION_URL: "http://127.0.0.1:9/admit" },
    });
    expectOneLineError(run, 1, /KILN_ADMISSION_URL refused.*KILN_ALLOW_PRIVATE_HOOKS=true/);
  });
});

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { PreviewTokens } from "./token.ts";

const run = promisify(execFile);

describe("preview tokens", () => {
  const tokens = new PreviewTokens();
  const grant = { sandboxId: "abc123", port: 8000, expiresAt: Date.now() + 60_000 };

  it("open only their own sandbox and port, until they expire", () => {
    const token = tokens.sign(grant);
    expect(tokens.verify(token, "abc123", 8000)).toEqual({ ok: true });
    expect(tokens.verify(token, "abc123", 8001)).toMatchObject({ ok: false });
    expect(tokens.verify(token, "abc124", 8000)).toMatchObject({ ok: false });
    expect(tokens.verify(token, "abc123", 8000, grant.expiresAt)).toEqual({ ok: false, reason: "expired" });
  });

  it("refuse a forged payload, a changed signature, another secret's token and garbage", () => {
    const token = tokens.sign(grant);
    const [, signature] = token.split(".") as [string, string];
    const forged = Buffer.from(JSON.stringify({ s: "abc123", p: 8000, e: Date.now() + 1e12 })).toString("base64url");
    expect(tokens.verify(`${forged}.${signature}`, "abc123", 8000)).toEqual({ ok: false, reason: "invalid" });
    expect(tokens.verify(`${token}x`, "abc123", 8000)).toMatchObject({ ok: false });
    expect(new PreviewTokens().verify(token, "abc123", 8000)).toEqual({ ok: false, reason: "invalid" });
    for (const junk of ["", ".", "a.b.c", "x".repeat(5000)]) expect(tokens.verify(junk, "abc123", 8000).ok).toBe(false);
  });
});

describe("the local preview proxy", () => {
  it("does not keep the process alive on its own", async () => {
    const index = new URL("../index.ts", import.meta.url).pathname;
    const script = `
      const { Kiln } = await import(${JSON.stringify(index)});
      const kiln = new Kiln({ engine: {} });
      const preview = await kiln.previews.url("abc123", 8000);
      const res = await fetch(preview.url.split("?")[0]);
      console.log(preview.url.split("/preview/")[0], res.status);
    `;
    const started = Date.now();
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { timeout: 20_000 });
    expect(stdout).toMatch(/^http:\/\/127\.0\.0\.1:\d+ 401\n$/);
    expect(Date.now() - started).toBeLessThan(15_000); // it exited by itself, the proxy still listening
  });
});

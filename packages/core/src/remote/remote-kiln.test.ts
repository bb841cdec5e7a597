import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError, ServerUnavailableError } from "../errors.ts";
import { Kiln } from "../kiln.ts";
import { remoteTarget } from "./remote-kiln.ts";

describe("which Kiln: remoteTarget", () => {
  it("uses options.url, with options.apiKey or KILN_API_KEY", () => {
    expect(remoteTarget({ url: "http://h:1", apiKey: "k" }, {})).toEqual({ url: "http://h:1", apiKey: "k" });
    expect(remoteTarget({ url: "http://h:1" }, { KILN_API_KEY: "e" })).toEqual({ url: "http://h:1", apiKey: "e" });
  });

  it("uses KILN_URL + KILN_API_KEY unless the options ask for a local engine or pool", () => {
    const env = { KILN_URL: "http://h:2", KILN_API_KEY: "e" };
    expect(remoteTarget({}, env)).toEqual({ url: "http://h:2", apiKey: "e" });
    expect(remoteTarget(undefined, env)).toEqual({ url: "http://h:2", apiKey: "e" });
    expect(remoteTarget({ docker: {} }, env)).toBeUndefined();
    expect(remoteTarget({ engine: {} }, env)).toBeUndefined();
    // The server's own Kiln passes pool: it must stay local even where KILN_URL is set.
    expect(remoteTarget({ pool: false }, env)).toBeUndefined();
    expect(remoteTarget({ pool: { size: 1 } }, env)).toBeUndefined();
    expect(remoteTarget({}, {})).toBeUndefined();
  });

  it("refuses url together with a local engine", () => {
    expect(() => remoteTarget({ url: "http://h:1", docker: {} }, {})).toThrow(InvalidArgumentError);
    expect(() => remoteTarget({ url: "http://h:1", pool: { size: 1 } }, {})).toThrow(/options.pool/);
  });
});

describe("new Kiln({ url })", () => {
  it("checks the URL and the key at construction", () => {
    expect(() => new Kiln({ url: "ftp://x", apiKey: "k" })).toThrow(/options.url/);
    expect(() => new Kiln({ url: "not a url", apiKey: "k" })).toThrow(/options.url/);
    expect(() => new Kiln({ url: "http://user:pw@h:1", apiKey: "k" })).toThrow(/credentials/);
    const saved = process.env.KILN_API_KEY;
    delete process.env.KILN_API_KEY;
    try {
      expect(() => new Kiln({ url: "http://127.0.0.1:1" })).toThrow(/KILN_API_KEY/);
    } finally {
      if (saved !== undefined) process.env.KILN_API_KEY = saved;
    }
  });

  it("names the URL when no server answers there", async () => {
    // A port that was free a moment ago: nothing listens on it.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const kiln = new Kiln({ url: `http://127.0.0.1:${port}/`, apiKey: "kiln_x" });
    const err = await kiln.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServerUnavailableError);
    expect((err as ServerUnavailableError).code).toBe("SERVER_UNAVAILABLE");
    expect((err as Error).message).toContain(`http://127.0.0.1:${port}`);
    expect((err as Error).message).toContain("ECONNREFUSED");
  });
});

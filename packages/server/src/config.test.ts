import { describe, expect, it } from "vitest";
import { serverConfigFromEnv } from "./config.ts";

describe("serverConfigFromEnv", () => {
  it("reads every KILN_ variable and nothing else", () => {
    expect(
      serverConfigFromEnv({
        KILN_HOST: "0.0.0.0",
        KILN_PORT: "8080",
        KILN_DATA_DIR: "/var/lib/kiln",
        KILN_DATABASE_URL: "postgres://u@h/db",
        KILN_POOL: "2",
        KILN_MAX_UPLOAD_MB: "10",
        KILN_PUBLIC_URL: "https://kiln.example.test",
        KILN_ADMIN_KEY: "kiln_0123456789abcdef",
        HOME: "/root",
      }),
    ).toEqual({
      host: "0.0.0.0",
      port: 8080,
      dataDir: "/var/lib/kiln",
      databaseUrl: "postgres://u@h/db",
      pool: 2,
      maxUploadMb: 10,
      publicUrl: "https://kiln.example.test",
      adminKey: "kiln_0123456789abcdef",
    });
    expect(serverConfigFromEnv({ KILN_PORT: "" })).toEqual({});
  });

  it("refuses numbers that are not whole or out of range, naming the variable", () => {
    expect(() => serverConfigFromEnv({ KILN_PORT: "70000" })).toThrow(/KILN_PORT/);
    expect(() => serverConfigFromEnv({ KILN_POOL: "-1" })).toThrow(/KILN_POOL/);
    expect(() => serverConfigFromEnv({ KILN_MAX_UPLOAD_MB: "1e3" })).toThrow(/KILN_MAX_UPLOAD_MB/);
  });

  it("KILN_SSE_KEEPALIVE_MS sets the SSE keep-alive interval (100 ms to 1 h)", () => {
    expect(serverConfigFromEnv({ KILN_SSE_KEEPALIVE_MS: "5000" })).toEqual({ sseKeepAliveMs: 5000 });
    expect(() => serverConfigFromEnv({ KILN_SSE_KEEPALIVE_MS: "0" })).toThrow(/KILN_SSE_KEEPALIVE_MS/);
  });

  it("KILN_POOL takes a JSON list of pools, one per shape", () => {
    expect(
      serverConfigFromEnv({ KILN_POOL: '[{"size":2},{"size":1,"image":"ds"},{"size":1,"snapshot":"base"}]' }).pool,
    ).toEqual([{ size: 2 }, { size: 1, image: "ds" }, { size: 1, snapshot: "base" }]);
    expect(() => serverConfigFromEnv({ KILN_POOL: "[1, 2]" })).toThrow(/KILN_POOL/);
    expect(() => serverConfigFromEnv({ KILN_POOL: "[{" })).toThrow(/KILN_POOL: not JSON/);
  });
});

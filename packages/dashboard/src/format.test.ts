import { describe, expect, it } from "vitest";
import type { SandboxInfo } from "./api.ts";
import {
  base64Utf8,
  bytes,
  joinPath,
  labelQuery,
  matches,
  networkText,
  parentOf,
  parseDuration,
  parseLabels,
  usage,
} from "./format.ts";

describe("what people type", () => {
  it("label filters: k=v words, anything else ignored", () => {
    expect(labelQuery(" team=ml  env=dev,x=1 junk ")).toEqual(["team=ml", "env=dev", "x=1"]);
    expect(labelQuery("")).toEqual([]);
  });

  it("labels: comma or line separated, the value may hold = and markup", () => {
    expect(parseLabels("team=ml, note=<img src=x onerror=a=1>\nempty=")).toEqual({
      team: "ml",
      note: "<img src=x onerror=a=1>",
      empty: "",
    });
    expect(parseLabels("=nokey, novalue")).toEqual({});
  });

  it("durations: ms, s, m, h, d, minutes by default", () => {
    expect(parseDuration("30m")).toBe(1_800_000);
    expect(parseDuration("90s")).toBe(90_000);
    expect(parseDuration("1.5h")).toBe(5_400_000);
    expect(parseDuration("2")).toBe(120_000);
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("soon")).toBeUndefined();
    expect(parseDuration("-5m")).toBeUndefined();
  });

  it("paths: join and parent", () => {
    expect(joinPath("/workspace", "a.txt")).toBe("/workspace/a.txt");
    expect(joinPath("/", "etc")).toBe("/etc");
    expect(parentOf("/workspace/data/")).toBe("/workspace");
    expect(parentOf("/workspace")).toBe("/");
    expect(parentOf("/")).toBe("/");
  });
});

describe("what the API answers", () => {
  it("network policies and sizes read as text", () => {
    expect(networkText("none")).toBe("none");
    expect(networkText({ allow: ["pypi.org", "*.github.com"] })).toBe("allow pypi.org, *.github.com");
    expect(bytes(12)).toBe("12 B");
    expect(bytes(1536)).toBe("1.5 KiB");
    expect(bytes(5 * 1024 ** 3)).toBe("5.0 GiB");
  });

  it("an SVG with any characters becomes a data: URL body", () => {
    expect(atob(base64Utf8("<svg>é</svg>"))).toBe("<svg>\u00c3\u00a9</svg>");
  });

  it("usage counts every sandbox, and the CPUs and memory of running ones", () => {
    const s = (state: SandboxInfo["state"], cpus: number, memoryMb: number) =>
      ({ state, resources: { cpus, memoryMb, pids: 512 } }) as SandboxInfo;
    expect(usage([s("running", 0.5, 512), s("running", 1, 1024), s("stopped", 2, 2048)])).toEqual({
      sandboxes: 3,
      running: 2,
      cpus: 1.5,
      memoryMb: 1536,
    });
  });

  it("audit filters match parts of the action, key and target", () => {
    const e = { action: "sandbox.create", keyId: "key_abc", target: "f00d" };
    expect(matches(e, { action: "sandbox.", key: "", sandbox: "" })).toBe(true);
    expect(matches(e, { action: "", key: "abc", sandbox: "f00" })).toBe(true);
    expect(matches(e, { action: "key.", key: "", sandbox: "" })).toBe(false);
    expect(matches({ ...e, keyId: null, target: null }, { action: "", key: "k", sandbox: "" })).toBe(false);
  });
});

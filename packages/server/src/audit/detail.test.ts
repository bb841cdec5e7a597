import { describe, expect, it } from "vitest";
import { auditDetail } from "./detail.ts";

describe("auditDetail", () => {
  it("keeps a hostile body storable: deep nesting, wide objects and long strings are bounded", () => {
    let deep: unknown = "bottom";
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const detail = auditDetail(
      "sandbox.create",
      {
        name: "x".repeat(10_000),
        labels: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, "v"])),
        network: deep,
      },
      {},
    );
    if (detail === undefined) throw new Error("no detail");
    const text = JSON.stringify(detail);
    expect(text.length).toBeLessThan(20_000);
    expect(Object.keys(detail.labels as object)).toHaveLength(64);
    expect((detail.name as string).length).toBe(4097);
    expect(JSON.stringify(detail.network)).toBe('[[[[[["…"]]]]]]');
  });

  it("leaves an ordinary detail as it was", () => {
    const body = { name: "dev", resources: { memoryMb: 512 }, labels: { team: "a" }, env: { SECRET: "s" } };
    expect(auditDetail("sandbox.create", body, {})).toEqual({
      name: "dev",
      resources: { memoryMb: 512 },
      labels: { team: "a" },
      envKeys: ["SECRET"],
    });
  });
});

import { describe, expect, it } from "vitest";
import { withinCeiling } from "./network-ceiling.ts";

describe("withinCeiling", () => {
  it("orders none < allow-list < egress", () => {
    expect(withinCeiling("none", "none")).toBe(true);
    expect(withinCeiling("egress", "none")).toBe(false);
    expect(withinCeiling({ allow: ["a.com"] }, "none")).toBe(false);
    expect(withinCeiling("egress", { allow: ["a.com"] })).toBe(false);
    expect(withinCeiling("none", { allow: ["a.com"] })).toBe(true);
    expect(withinCeiling({ allow: ["x.org"] }, "egress")).toBe(true);
  });

  it("fits an allow-list entry by entry, with *. wildcards covering subdomains only", () => {
    const ceiling = { allow: ["pypi", "*.example.com", "10.0.0.0/8"] };
    expect(withinCeiling({ allow: ["pypi", "a.example.com", "*.b.example.com"] }, ceiling)).toBe(true);
    expect(withinCeiling({ allow: ["example.com"] }, ceiling)).toBe(false);
    expect(withinCeiling({ allow: ["evilexample.com"] }, ceiling)).toBe(false);
    expect(withinCeiling({ allow: ["*.example.com"] }, ceiling)).toBe(true);
    expect(withinCeiling({ allow: ["npm"] }, ceiling)).toBe(false);
    expect(withinCeiling({ allow: ["A.EXAMPLE.com"] }, ceiling)).toBe(true);
  });
});

import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../errors.ts";
import { expandAllowList, NETWORK_PRESETS } from "./policy.ts";

describe("allow-list rules", () => {
  it("normalises domains, wildcards, IPs and CIDRs, and refuses the rest naming the rule", () => {
    expect(expandAllowList("allow", ["PyPI.org.", "*.Example.org", "192.0.2.10", "198.51.100.0/24"])).toEqual([
      "pypi.org",
      "*.example.org",
      "192.0.2.10",
      "198.51.100.0/24",
    ]);
    for (const bad of ["*.", "exa mple.org", "10.0.0.0/33", "", 7]) {
      expect(() => expandAllowList("allow", ["pypi.org", bad])).toThrow(InvalidArgumentError);
    }
    expect(() => expandAllowList("allow", ["pypi.org", "bad host"])).toThrow(/allow\[1\]/);
  });

  it("expands npm to the registry this machine's npm is configured with", () => {
    const registry = new URL(execFileSync("npm", ["config", "get", "registry"], { encoding: "utf8" }).trim());
    expect(expandAllowList("allow", ["npm"])).toEqual([registry.hostname]);
  });

  it("expands debian to the hosts of this machine's apt sources, and pypi and github to public hosts", () => {
    const debian = NETWORK_PRESETS.debian ?? [];
    expect(debian.length).toBeGreaterThan(0);
    expect(expandAllowList("allow", ["debian"])).toEqual([...debian]);
    expect(expandAllowList("allow", ["pypi"])).toEqual(["pypi.org", "files.pythonhosted.org"]);
    expect(expandAllowList("allow", ["github"])).toContain("github.com");
  });
});

import { describe, expect, it } from "vitest";
import { InvalidArgumentError, NotSupportedError } from "../errors.ts";
import { validateCreate } from "./create-options.ts";

describe("validateCreate", () => {
  it("fills documented defaults", () => {
    expect(validateCreate(undefined)).toEqual({
      language: "python",
      labels: {},
      env: {},
      resources: { cpus: 1, memoryMb: 1024, pids: 512 },
      network: "none",
      runtime: "runc",
      volumes: [],
    });
  });

  it("merges Kiln defaults under call options, resources field by field", () => {
    const v = validateCreate(
      { resources: { cpus: 2 }, env: { A: "1" } },
      { resources: { memoryMb: 2048 }, language: "javascript", env: { B: "2" } },
    );
    expect(v.resources).toEqual({ cpus: 2, memoryMb: 2048, pids: 512 });
    expect(v.language).toBe("javascript");
    expect(v.env).toEqual({ A: "1" });
  });

  it.each([
    [{ resources: { memoryMb: -1 } }, "options.resources.memoryMb"],
    [{ resources: { cpus: Number.NaN } }, "options.resources.cpus"],
    [{ resources: { pids: 3.5 } }, "options.resources.pids"],
    [{ resources: "big" }, "options.resources"],
    [{ name: "has space" }, "options.name"],
    [{ name: "../x" }, "options.name"],
    [{ env: { "1BAD": "x" } }, "options.env.1BAD"],
    [{ env: { OK: 1 } }, "options.env.OK"],
    [{ labels: { "bad key!": "x" } }, "options.labels.bad key!"],
    [{ autoStopMs: Number.POSITIVE_INFINITY }, "options.autoStopMs"],
    [{ volumes: [{ volume: "data", mountPath: "/proc" }] }, "options.volumes[0].mountPath"],
    [{ volumes: [{ volume: "data", mountPath: "/a/../etc" }] }, "options.volumes[0].mountPath"],
    [{ volumes: [{ volume: "", mountPath: "/data" }] }, "options.volumes[0].volume"],
    [{ image: "x", snapshot: "y" }, "options.snapshot"],
    [{ signal: "stop" }, "options.signal"],
    [{ resources: { pids: 1_000_000 } }, "options.resources.pids"],
    [{ runtime: "kata" }, "options.runtime"],
    [{ env: { PATH: "/x" } }, "options.env.PATH"],
  ])("rejects %j naming %s", (options, field) => {
    let error: unknown;
    try {
      validateCreate(options);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as InvalidArgumentError).field).toBe(field);
  });

  it("expands allow-list presets and normalises rules", () => {
    const v = validateCreate({
      network: { allow: ["PyPI.org.", "*.example.org", "10.1.2.3", "192.0.2.0/24", "pypi"] },
    });
    expect(v.network).toEqual({
      allow: ["pypi.org", "*.example.org", "10.1.2.3", "192.0.2.0/24", "files.pythonhosted.org"],
    });
  });

  it("names the bad allow-list rule", () => {
    for (const bad of ["", "*", "*.org", "exa mple.org", "http://x.org", "1.2.3.4/33", "foo", "*.*.x.org", 7]) {
      expect(() => validateCreate({ network: { allow: [bad] } }), String(bad)).toThrow(/options\.network\.allow\[0\]/);
    }
    expect(() => validateCreate({ network: { allow: "pypi.org" } })).toThrow(InvalidArgumentError);
    expect(() => validateCreate({ network: { allow: [], deny: [] } })).toThrow(InvalidArgumentError);
  });

  it("says why a PATH without the system directories is refused, and takes one that keeps them", () => {
    expect(() => validateCreate({ env: { PATH: "/x" } })).toThrow(/must keep \/usr\/bin and \/bin/);
    expect(validateCreate({ env: { PATH: "/x:/usr/bin:/bin" } }).env.PATH).toBe("/x:/usr/bin:/bin");
  });

  it("takes runtime gvisor with network none and refuses it with egress", () => {
    expect(validateCreate({ runtime: "gvisor" }).runtime).toBe("gvisor");
    expect(() => validateCreate({ runtime: "gvisor", network: "egress" })).toThrow(NotSupportedError);
    expect(() => validateCreate({ network: "egress" }, { runtime: "gvisor" })).toThrow(/supports only network "none"/);
  });

  it("refuses an allow-list under gVisor, saying so", () => {
    expect(() => validateCreate({ runtime: "gvisor", network: { allow: ["pypi"] } })).toThrow(/for an allow-list/);
  });
});

import { describe, expect, it } from "vitest";
import { declaredNetwork, describeTools, INPUT_DESCRIPTIONS } from "./descriptions.ts";

const limits = { timeoutMs: 60_000, maxOutputChars: 12_000 };

describe("describeTools", () => {
  it("tells the model the limits that apply", () => {
    const tools = describeTools({ timeoutMs: 1500, maxOutputChars: 321 });
    expect(tools.run_code).toMatch(/1\.5 s at most/);
    expect(tools.run_code).toMatch(/321 characters/);
    expect(Object.keys(tools)).toEqual(["run_code", "run_command", "read_file", "write_file", "list_files"]);
  });

  it("states the network only as precisely as it is known", () => {
    expect(describeTools({ ...limits, network: "none" }).run_command).toMatch(/has no network access \(/);
    expect(describeTools({ ...limits, network: "egress" }).run_command).toMatch(
      /can reach the internet, but not private/,
    );
    expect(describeTools(limits).run_command).toMatch(/unless it was enabled for you/);
    expect(declaredNetwork({ network: "egress" })).toBe("egress");
    expect(declaredNetwork({})).toBeUndefined();
    expect(declaredNetwork(undefined)).toBeUndefined();
    expect(declaredNetwork({ network: { allow: ["x"] } })).toBeUndefined();
  });

  it("describes every input field", () => {
    expect(INPUT_DESCRIPTIONS.path).toMatch(/relative to \/workspace/);
  });
});

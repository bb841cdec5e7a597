// Requests over the 1 MiB frame header (issue 8, defect 6): they work (carried in the frame
// body) or fail alone with InvalidArgumentError naming the field; never the connection.
import { beforeAll, describe, expect, it } from "vitest";
import { InvalidArgumentError, type Sandbox } from "../src/index.ts";
import { sandbox, testKiln } from "./helpers.ts";

const kiln = testKiln();
let sb: Sandbox;
beforeAll(async () => {
  sb = await sandbox(kiln);
});

describe("large requests", () => {
  it("runs a 2 MB code cell", async () => {
    const code = `s = "${"a".repeat(2_000_000)}"\nlen(s)`;
    const execution = await sb.runCode(code);
    expect(execution.status).toBe("ok");
    expect(execution.results[0]?.text).toBe("2000000");
  });

  it("passes a 1.5 MB environment in pieces; one variable over execve's limit names options.env", async () => {
    const env: Record<string, string> = {};
    for (let i = 0; i < 15; i++) env[`BIG_${i}`] = "e".repeat(100_000);
    const result = await sb.exec('printf %s "$BIG_14" | wc -c', { env });
    expect(result.stdout.trim()).toBe("100000");
    const err = await sb.exec("true", { env: { HUGE: "e".repeat(1_500_000) } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).field).toBe("options.env");
    expect((err as Error).message).toMatch(/E2BIG/);
  });

  it("a 10 MB argv fails alone with InvalidArgumentError naming the command; calls in flight go on", async () => {
    const inFlight = sb.exec("sleep 1; echo survived");
    const cell = sb.runCode("import time\ntime.sleep(1)\n'cell survived'");
    const err = await sb.exec(["echo", "x".repeat(10_000_000)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).field).toBe("command");
    // Over what one request may carry at all (32 MiB): refused on the host, before sending.
    const huge = await sb.runCode("x".repeat(40_000_000)).catch((e: unknown) => e);
    expect(huge).toBeInstanceOf(InvalidArgumentError);
    expect((huge as InvalidArgumentError).field).toBe("code");
    expect((await inFlight).stdout).toBe("survived\n");
    expect((await cell).results[0]?.text).toBe("'cell survived'");
    expect((await sb.exec("echo still")).stdout).toBe("still\n");
  });
});

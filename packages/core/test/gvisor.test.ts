// The gVisor tier (issue 8): per-sandbox runtime, a warm pool of gVisor sandboxes, and the network
// modes it refuses. Needs runsc registered with the engine (scripts/setup.sh gvisor); without it
// these fail with NotSupportedError saying so.
import { describe, expect, it } from "vitest";
import { NotSupportedError } from "../src/index.ts";
import { sandbox, TEST_LABELS, testKiln } from "./helpers.ts";

describe("runtime: gvisor", () => {
  const kiln = testKiln();
  const gvisorPool = testKiln({ pool: { size: 1 }, defaults: { runtime: "gvisor" } });

  it("runs one sandbox under gVisor beside runc ones", async () => {
    const [gv, rc] = await Promise.all([sandbox(kiln, { runtime: "gvisor" }), sandbox(kiln)]);
    expect((await gv.exec("dmesg")).stdout).toMatch(/Starting gVisor/);
    expect((await rc.exec("dmesg 2>&1 || true")).stdout).not.toMatch(/gVisor/);
    expect((await gv.runCode("21 * 2")).results[0]?.text).toBe("42");
  });

  it("keeps gVisor sandboxes warm in a pool whose defaults say so", async () => {
    await gvisorPool.pool?.filled();
    expect(gvisorPool.pool?.ready).toBe(1);
    const sb = await sandbox(gvisorPool);
    expect((await gvisorPool.engine.inspectContainer(sb.id))?.labels["kiln.kind"]).toBe("pool");
    expect((await sb.exec("dmesg")).stdout).toMatch(/Starting gVisor/);
    // A runc request on the gVisor pool's Kiln never gets a gVisor member.
    const plain = await sandbox(gvisorPool, { runtime: "runc" });
    expect((await gvisorPool.engine.inspectContainer(plain.id))?.labels["kiln.kind"]).toBe("sandbox");
  });

  it("refuses network modes gVisor cannot run here, before touching the engine", async () => {
    const error = await kiln
      .create({ runtime: "gvisor", network: "egress", labels: TEST_LABELS })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotSupportedError);
    expect((error as Error).message).toMatch(/supports only network "none"/);
  });
});

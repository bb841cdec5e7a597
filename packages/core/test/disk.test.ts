// resources.diskMb and the default disk cap (issue 8, defect 8). They need an engine whose storage
// can cap a container's writable layer: Kiln's setup gives the dockerd it starts a btrfs data root
// with simple quotas (scripts/setup.sh storage). On an engine without one, diskMb must be refused.
import { describe, expect, it } from "vitest";
import { DEFAULT_DISK_MB } from "../src/defaults.ts";
import { DockerEngine } from "../src/engine/docker/docker-engine.ts";
import { NotSupportedError } from "../src/index.ts";
import { sandbox, TEST_LABELS, testKiln } from "./helpers.ts";

const kiln = testKiln();
const { supportsDiskQuota, capsDiskByDefault, storage } = await kiln.engine.info();

describe(`disk caps (engine storage: ${storage})`, () => {
  it.runIf(!supportsDiskQuota)("refuses diskMb, saying how to get an engine that can cap it", async () => {
    const error = await kiln.create({ resources: { diskMb: 512 }, labels: TEST_LABELS }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotSupportedError);
    expect((error as Error).message).toMatch(/scripts\/setup.sh storage/);
  });

  // The rest needs quota-capable storage: skipped (with this reason) on an engine without it.
  it.runIf(supportsDiskQuota)(
    "stops a sandbox at diskMb bytes with a quota error, and frees the space on delete",
    async () => {
      const sb = await sandbox(kiln, { resources: { diskMb: 64 } });
      const fill = await sb.exec("dd if=/dev/zero of=big bs=1M count=200 2>&1; sync; stat -c %s big", {
        timeoutMs: 60_000,
      });
      expect(fill.stdout).toMatch(/Disk quota exceeded|No space left/);
      const size = Number(fill.stdout.trim().split("\n").at(-1));
      expect(size).toBeLessThanOrEqual(64 * 1024 * 1024);
      expect(size).toBeGreaterThan(32 * 1024 * 1024);
      // Still usable once the file is gone.
      expect((await sb.exec("rm big && echo ok > small && cat small")).stdout).toBe("ok\n");
    },
  );

  it.runIf(supportsDiskQuota)(
    "stops a flood of empty files (inodes are charged to the same cap)",
    { timeout: 180_000 },
    async () => {
      const sb = await sandbox(kiln, { resources: { diskMb: 16 } });
      const flood = await sb.exec(
        `python3 -c "
import os
n = 0
try:
    for i in range(1_000_000):
        d = 'f/%d' % (i // 1000)
        if i % 1000 == 0: os.makedirs(d, exist_ok=True)
        open('%s/%d' % (d, i), 'w').close(); n += 1
except OSError as e:
    print('stopped', n, e.errno)
"`,
        { timeoutMs: 170_000 },
      );
      expect(flood.stdout).toMatch(/^stopped \d+ (122|28)$/m);
      expect(Number(flood.stdout.split(" ")[1])).toBeLessThan(200_000);
    },
  );

  it.runIf(capsDiskByDefault)(`caps every sandbox at ${DEFAULT_DISK_MB} MiB by default, pooled ones too`, async () => {
    const pooled = testKiln({ pool: { size: 1 } });
    await pooled.pool?.filled();
    const cold = await sandbox(kiln);
    const warm = await sandbox(pooled);
    const docker = (kiln.engine as DockerEngine).docker;
    expect(kiln.engine).toBeInstanceOf(DockerEngine);
    for (const sb of [cold, warm]) {
      const raw = await docker.getContainer(sb.id).inspect();
      expect(raw.HostConfig.StorageOpt).toEqual({ size: `${DEFAULT_DISK_MB}M` });
    }
  });
});

// resources.diskMb and the default disk cap (issue 8, defect 8). Where the engine's storage has
// quotas (a btrfs data root from scripts/setup.sh storage, XFS with pquota) the writable layer is
// capped by the engine; on overlay2 over ext4 (this machine's engine) each sandbox's writable
// places are a loop-mounted ext4 disk of diskMb (engine/docker/disks.ts). Hostile cases against
// the real engine: dd past the cap, an inode flood, a download of a sparse file, and what delete,
// restart, snapshots and the sweeper leave on the host.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { DEFAULT_DISK_MB } from "../src/defaults.ts";
import { DISK_LABEL, DISK_PLACES, DISK_ROOT } from "../src/engine/docker/disks.ts";
import { DockerEngine } from "../src/engine/docker/docker-engine.ts";
import { NotSupportedError, type Sandbox, SandboxFileError } from "../src/index.ts";
import { ownerAlive } from "../src/sweeper.ts";
import { sandbox, TEST_ENGINE, TEST_LABELS, testKiln } from "./helpers.ts";

const MIB = 1024 * 1024;
const kiln = testKiln();
const { supportsDiskQuota, capsDiskByDefault, storage, loopDisks, runtimes } = await kiln.engine.info();
const docker = kiln.engine instanceof DockerEngine ? kiln.engine.docker : undefined;
// This machine's engine (overlay2 on ext4) must cap: with Kiln's loop disks, unless turned off.
const mustCap =
  supportsDiskQuota ||
  (TEST_ENGINE === "docker" && /^overlay2 on extfs/.test(storage) && process.env.KILN_LOOP_DISKS !== "0");
// The host-side checks read the engine's host: this machine's engine, tests run as root.
const onHost =
  TEST_ENGINE === "docker" &&
  /^overlay2 on extfs/.test(storage) &&
  process.env.KILN_LOOP_DISKS !== "0" &&
  process.getuid?.() === 0;

async function diskOf(sb: Sandbox): Promise<string> {
  const raw = await (docker as NonNullable<typeof docker>).getContainer(sb.id).inspect();
  const id = raw.Config.Labels[DISK_LABEL.disk];
  expect(id).toMatch(/^[0-9a-f]{16}$/);
  return id as string;
}

/** Loop devices whose backing file is this disk's image. */
function loopsOf(id: string): string[] {
  const out = execFileSync("losetup", ["-j", `${DISK_ROOT}/${id}/disk.img`], { encoding: "utf8" });
  return out.split("\n").filter((l) => l.trim() !== "");
}

function mounted(id: string): boolean {
  return readFileSync("/proc/self/mounts", "utf8").includes(`${DISK_ROOT}/${id}/mnt`);
}

/** Nothing of the disk is left on the host (a delete releases it just after it returns). */
async function expectGone(id: string): Promise<void> {
  await expect.poll(() => existsSync(`${DISK_ROOT}/${id}`), { timeout: 20_000 }).toBe(false);
  expect(loopsOf(id)).toEqual([]);
  expect(mounted(id)).toBe(false);
}

describe(`disk caps (engine storage: ${storage})`, () => {
  it.runIf(!mustCap)("refuses diskMb, saying how to get an engine that can cap it", async () => {
    const error = await kiln.create({ resources: { diskMb: 512 }, labels: TEST_LABELS }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotSupportedError);
    expect((error as Error).message).toMatch(/scripts\/setup.sh storage/);
  });

  // The rest needs an engine that can cap (quota-capable storage or loop disks).
  it.runIf(mustCap)(
    "stops a sandbox at diskMb bytes (ENOSPC/EDQUOT), the host's disk does not grow past it, and the sandbox keeps working",
    { timeout: 120_000 },
    async () => {
      const sb = await sandbox(kiln, { resources: { diskMb: 64 } });
      const fill = await sb.exec("dd if=/dev/zero of=big bs=1M count=200 2>&1; sync; stat -c %s big", {
        timeoutMs: 60_000,
      });
      expect(fill.stdout).toMatch(/Disk quota exceeded|No space left/);
      const size = Number(fill.stdout.trim().split("\n").at(-1));
      expect(size).toBeLessThanOrEqual(64 * MIB);
      expect(size).toBeGreaterThan(32 * MIB);
      if (onHost) {
        // What the sandbox's disk really takes on the host: at most its size.
        const image = statSync(`${DISK_ROOT}/${await diskOf(sb)}/disk.img`);
        expect(image.blocks * 512).toBeLessThanOrEqual(64 * MIB);
        expect(image.blocks * 512).toBeGreaterThan(32 * MIB);
      }
      // The home directory and /var/tmp are on the same disk (full now); the rootfs is not writable.
      const others = await sb.exec(
        "for p in ~/x /var/tmp/x /run/lock/y /usr/x /x; do head -c 900K /dev/zero > $p 2>/dev/null && echo $p; done; true",
      );
      // /run/lock is a 1 MiB tmpfs (memory); nothing else takes a write.
      if (loopDisks) expect(others.stdout).toBe("/run/lock/y\n");
      // Still usable once the file is gone.
      expect((await sb.exec("rm big && echo ok > small && cat small")).stdout).toBe("ok\n");
      expect((await sb.runCode("1 + 1")).results[0]?.text).toBe("2");
    },
  );

  it.runIf(mustCap)("stops a flood of empty files (inodes are capped too)", { timeout: 180_000 }, async () => {
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
    expect((await sb.exec("rm -rf f && echo ok > small && cat small")).stdout).toBe("ok\n");
  });

  it.runIf(capsDiskByDefault || mustCap)(
    `caps every sandbox at ${DEFAULT_DISK_MB} MiB by default, pooled ones too`,
    async () => {
      const pooled = testKiln({ pool: { size: 1 } });
      await pooled.pool?.filled();
      const cold = await sandbox(kiln);
      const warm = await sandbox(pooled);
      expect(kiln.engine).toBeInstanceOf(DockerEngine);
      for (const sb of [cold, warm]) {
        const raw = await (docker as NonNullable<typeof docker>).getContainer(sb.id).inspect();
        if (loopDisks) {
          expect(raw.Config.Labels[DISK_LABEL.disk]).toBeDefined();
          const df = await sb.exec("df -B1M --output=size /workspace | tail -1");
          expect(Number(df.stdout.trim())).toBeGreaterThan(DEFAULT_DISK_MB * 0.9);
          expect(Number(df.stdout.trim())).toBeLessThanOrEqual(DEFAULT_DISK_MB);
        } else {
          expect(raw.HostConfig.StorageOpt).toEqual({ size: `${DEFAULT_DISK_MB}M` });
        }
      }
    },
  );

  it.runIf(loopDisks && runtimes.includes("runsc"))(
    "caps a gVisor sandbox the same way",
    { timeout: 120_000 },
    async () => {
      const sb = await sandbox(kiln, { runtime: "gvisor", resources: { diskMb: 32 } });
      const fill = await sb.exec(
        "dd if=/dev/zero of=big bs=1M count=100 2>&1; stat -c %s big; rm big; echo ok > f; cat f",
        {
          timeoutMs: 60_000,
        },
      );
      expect(fill.stdout).toMatch(/No space left/);
      const size = Number(fill.stdout.trim().split("\n").at(-2));
      expect(size).toBeLessThanOrEqual(32 * MIB);
      expect(fill.stdout).toMatch(/ok\n$/);
    },
  );

  it("download() of a sparse file stops at maxBytes, and never writes the holes out", async () => {
    const sb = await sandbox(kiln, { resources: loopDisks ? { diskMb: 64 } : {} });
    await sb.exec("truncate -s 3G sparse && truncate -s 10M small");
    const local = await mkdtemp(join(tmpdir(), "kiln-disk-"));
    try {
      const started = Date.now();
      const error = await sb.files.download("sparse", join(local, "sparse")).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SandboxFileError);
      expect(error).toMatchObject({ errno: "EFBIG" });
      expect((error as Error).message).toMatch(/3221225472 bytes/);
      // Refused from its size, before a byte moved.
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(await readdir(local)).toEqual([]);
      const small = await sb.files.download("small", join(local, "small"), { maxBytes: 5 * MIB }).catch((e) => e);
      expect(small).toMatchObject({ errno: "EFBIG" });
      expect(await readdir(local)).toEqual([]);
    } finally {
      await rm(local, { recursive: true, force: true });
    }
  });
});

describe.runIf(onHost)("loop disks on the host (overlay2 without quotas)", () => {
  const engine = kiln.engine as DockerEngine;

  it("puts /workspace, the home directory and /var/tmp on one disk, with the image's content copied in", async () => {
    const sb = await sandbox(kiln, { resources: { diskMb: 32 } });
    const id = await diskOf(sb);
    expect(loopsOf(id)).toHaveLength(1);
    const r = await sb.exec(
      `stat -c %d ${DISK_PLACES.map((p) => p.target).join(" ")}; findmnt -n -o SOURCE --target /workspace; ls -A ~; stat -c '%U %a' /workspace ~ /var/tmp; echo $HOME`,
    );
    const lines = r.stdout.trim().split("\n");
    // One device behind all three places, not the rootfs's.
    expect(new Set(lines.slice(0, 3)).size).toBe(1);
    expect((await sb.exec("stat -c %d /")).stdout.trim()).not.toBe(lines[0]);
    expect(lines[3]).toMatch(/^\/dev\/loop\d+\[\/workspace\]$/);
    expect(r.stdout).toMatch(/\.bashrc/);
    expect(r.stdout).toMatch(/kiln 755\nkiln 755\nroot 1777\n\/home\/kiln/);
  });

  it("delete leaves no loop device, mount or image behind", async () => {
    const sb = await sandbox(kiln, { resources: { diskMb: 32 } });
    const id = await diskOf(sb);
    expect(mounted(id)).toBe(true);
    await sb.exec("head -c 4M /dev/urandom > data");
    await sb.delete();
    await expectGone(id);
  });

  it("a disk survives stop/start, and is mounted again when it was not (a host reboot)", async () => {
    const sb = await sandbox(kiln, { resources: { diskMb: 32 } });
    const id = await diskOf(sb);
    await sb.exec("echo kept > kept && echo home > ~/h");
    await sb.stop();
    // What a reboot does to the disk: unmounted, loop device gone.
    execFileSync("umount", [`${DISK_ROOT}/${id}/mnt`]);
    // The loop device goes with its last mount.
    await expect.poll(() => loopsOf(id), { timeout: 10_000 }).toEqual([]);
    // Fail closed: the engine alone cannot start it on an uncapped directory.
    await expect((docker as NonNullable<typeof docker>).getContainer(sb.id).start()).rejects.toThrow();
    await sb.start();
    expect((await sb.exec("cat kept ~/h; df -B1M --output=size /workspace | tail -1")).stdout).toMatch(
      /^kept\nhome\n\s*\d+\n$/,
    );
    expect(loopsOf(id)).toHaveLength(1);
  });

  it("a snapshot keeps the disk's content (workspace and home)", { timeout: 120_000 }, async () => {
    const sb = await sandbox(kiln, { resources: { diskMb: 32 } });
    await sb.exec("mkdir -p proj && echo snap > proj/f && echo h > ~/hf");
    const name = `disk-snap-${process.pid}`;
    await sb.snapshot(name);
    try {
      const restored = await sandbox(kiln, { snapshot: name, resources: { diskMb: 32 } });
      expect((await restored.exec("cat proj/f ~/hf")).stdout).toBe("snap\nh\n");
      await restored.delete();
    } finally {
      await kiln.snapshots.delete(name).catch(() => {});
    }
  });

  it("the sweeper releases disks nobody refers to: a sandbox removed behind Kiln's back, a dead process's spares", async () => {
    // A container removed by someone else: its disk is left, unreferenced.
    const sb = await sandbox(kiln, { resources: { diskMb: 32 } });
    const orphan = await diskOf(sb);
    await (docker as NonNullable<typeof docker>).getContainer(sb.id).remove({ force: true });
    // A process killed -9 with a spare disk ready.
    const child = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `
        import { DockerEngine } from ${JSON.stringify(join(import.meta.dirname, "../src/engine/docker/docker-engine.ts"))};
        const engine = new DockerEngine(undefined, { diskSpares: 1 });
        await engine.info();
        engine.disks.warm(32, (await engine.docker.getImage(${JSON.stringify(inject("runtimeImage"))}).inspect()).Id);
        const wait = async () => { while ((await engine.disks.list()).filter((d) => d.owner.endsWith("/" + process.pid)).length < 1) await new Promise((r) => setTimeout(r, 200)); };
        await wait();
        // the helper's spare is ready: wait to be killed
        console.log("ready");
        setInterval(() => {}, 1000);
        `,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
      child.on("exit", (code) => reject(new Error(`child exited ${code}`)));
    });
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const spares = (await engine.disks.list()).filter((d) => d.owner.endsWith(`/${child.pid}`)).map((d) => d.id);
    expect(spares).toHaveLength(1);
    // The dead process's spare goes at once; this process's own only after the grace (one of its
    // creates may be about to use it)...
    const early = await engine.reclaimHelpers(ownerAlive);
    expect(early).toContain(`disk:${spares[0]}`);
    expect(early).not.toContain(`disk:${orphan}`);
    // ...and nothing of theirs is left on the host.
    const removed = await engine.reclaimHelpers(ownerAlive, Date.now() + 10 * 60_000);
    expect(removed).toContain(`disk:${orphan}`);
    for (const id of [orphan, ...spares]) await expectGone(id);
    // Disks in use stay.
    const live = await sandbox(kiln, { resources: { diskMb: 32 } });
    const kept = await diskOf(live);
    await engine.reclaimHelpers(ownerAlive, Date.now() + 10 * 60_000);
    expect(mounted(kept)).toBe(true);
    expect((await live.exec("echo ok > f && cat f")).stdout).toBe("ok\n");
  });
});

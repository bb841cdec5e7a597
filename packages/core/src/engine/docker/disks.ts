/**
 * Disk caps on engines whose storage has no quotas (overlay2 on ext4: this machine's engine).
 *
 * Each capped sandbox gets its own **disk**: a sparse ext4 image of `diskMb` MiB (one inode per
 * 16 KiB, so bytes and inodes are both bounded; the host sees one file, never the sandbox's
 * inodes), attached through a loop device and mounted on the engine's host at
 * `/var/lib/kiln/disks/<id>/mnt`, with `discard` so files deleted inside give their blocks back.
 * The sandbox's writable places (DISK_PLACES: /workspace, the home directory, /var/tmp) are bind
 * mounts of that disk's subdirectories. mkfs fills a new disk from a template of the image's own
 * /workspace and home directory (made once per image on the host), as the engine's volume
 * copy-up would; a snapshot's commit copies the places back into the image
 * (DockerEngine.#commitWithDisk).
 *
 * Fail closed: when the disk is not mounted (after a host reboot), the subdirectories do not
 * exist and the engine refuses to start the container rather than bind an uncapped directory;
 * `ensureMounted` (every start after the first) mounts it again, after an `e2fsck -p`.
 *
 * The Kiln process need not be root: loop devices, mkfs and mounts are made in dockerd's mount
 * namespace by one long-lived helper container (`kiln-disks`: SYS_ADMIN and SYS_PTRACE, loop
 * devices only, the host's /proc read-only, no network, `sleep`), shared by every Kiln process on the
 * engine and started again when found stopped (engine restart). Each process talks to it over
 * one long-lived exec (`nsenter` into dockerd's namespace, one request per line): an exec per
 * request costs ~200 ms of engine work here.
 *
 * Each process keeps `spares` disks per size and image ready, made off the create path. A disk
 * no container refers to is released by the sweeper (reclaim) once its owner is gone or it is
 * past a grace, and templates of deleted images are dropped.
 */
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";
import type { Duplex, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type Dockerode from "dockerode";
import { EngineError, NotSupportedError } from "../../errors.ts";
import { processOwner } from "../../sweeper.ts";
import { StreamDemuxer } from "./demux.ts";

/** Where disks live on the engine's host. */
export const DISK_ROOT = "/var/lib/kiln/disks";

export const DISK_LABEL = {
  /** On a capped sandbox: the id of its disk (empty on a snapshot's image: no disk). */
  disk: "kiln.disk",
  /** On the shared helper container. */
  helper: "kiln.disk-helper",
} as const;

export const DISK_HELPER_NAME = "kiln-disks";

/** The helper's configuration version (its label's value): another one is made again. */
const HELPER_VERSION = "2";

/** Longest a disk request may go unanswered before its channel is judged dead (mkfs of a big disk under load). */
const REQUEST_TIMEOUT_MS = 120_000;

/** The sandbox's writable places, each a subdirectory of its disk. */
export const DISK_PLACES = [
  { sub: "workspace", target: "/workspace" },
  { sub: "home", target: "/home/kiln" },
  { sub: "var-tmp", target: "/var/tmp" },
] as const;

/** ext4's default: one inode per 16 KiB (a 4 GiB disk holds 262,144 files, a 16 MiB one 1,024). */
export const BYTES_PER_INODE = 16_384;

/** A disk nobody refers to is left alone this long (its container may be being created). */
export const DISK_GRACE_MS = 120_000;

const MOUNT_OPTIONS = "loop,nosuid,nodev,noinit_itable,discard";

/**
 * Runs in the helper: enters dockerd's mount namespace (where the engine resolves bind sources;
 * the host's PID 1 may refuse to be entered, as this machine's does) and runs the request loop
 * there (or SCRIPT once, with the arguments, when KILN_DISK_LOOP is unset).
 */
const ENTER = `d=1
for p in /host/proc/[0-9]*; do [ "$(cat "$p/comm" 2>/dev/null)" = dockerd ] && { d=\${p#/host/proc/}; break; }; done
exec nsenter --mount="/host/proc/$d/ns/mnt" -- sh -c "\${KILN_DISK_LOOP:-$KILN_DISK_SCRIPT}" kiln-disk "$@"`;

/**
 * In dockerd's mount namespace: one request per line ("<seq> <op> <args>"), run one after the
 * other; one reply line each ("<seq> <exit code> <output, newlines as \x1f>"). Ends when its
 * stdin does (the Kiln process is gone).
 */
const LOOP = `while IFS=' ' read -r seq args; do
  out=$(sh -c "$KILN_DISK_SCRIPT" kiln-disk $args 2>&1) && rc=0 || rc=$?
  printf '%s %s %s\\n' "$seq" "$rc" "$(printf %s "$out" | tr '\\n' '\\037')"
done`;

/** Runs on the engine's host (POSIX sh), as root in its mount namespace. */
const SCRIPT = `set -eu
root=${DISK_ROOT}
op=$1; id=\${2:-}
case "$op:$id" in list:|templates:) ;; *:*[!0-9a-f]*|*:) echo "bad id" >&2; exit 2;; esac
d=$root/$id
t=$root/templates
case $op in
prepare)
  # id size-MiB bytes-per-inode owner image: the image's places are copied in by mkfs itself.
  case "$6" in *[!0-9a-f]*|"") echo "bad image" >&2; exit 2;; esac
  [ -d "$t/$6" ] || { echo "no template for image $6" >&2; exit 4; }
  mkdir -p "$d/mnt"
  # Only root on the host reaches a sandbox's files (as under /var/lib/docker).
  chmod 0700 "$root"
  printf %s "$5" > "$d/owner"
  truncate -s "$3M" "$d/disk.img"
  mkfs.ext4 -q -F -m 0 -i "$4" -O ^has_journal -E lazy_itable_init=1,nodiscard -d "$t/$6" "$d/disk.img"
  mount -o ${MOUNT_OPTIONS} "$d/disk.img" "$d/mnt"
  rmdir "$d/mnt/lost+found"
  echo ok;;
has-template)
  [ -d "$t/$id" ] && echo yes || echo no;;
untar)
  # image token place: one place of the image (a tar of it on stdin) into a template being made.
  case "$3" in *[!0-9a-f]*|"") echo "bad token" >&2; exit 2;; esac
  case "$4" in workspace|home) ;; *) echo "bad place" >&2; exit 2;; esac
  x=$t/$id.$3/$4.x
  mkdir -p "$x"; chmod 0700 "$t"
  tar -x --numeric-owner -C "$x"
  for e in "$x"/* "$x"/.[!.]*; do [ -e "$e" ] && mv "$e" "$t/$id.$3/$4"; done
  rmdir "$x"
  echo ok;;
template-done)
  # image token: the template is complete; first one wins.
  case "$3" in *[!0-9a-f]*|"") echo "bad token" >&2; exit 2;; esac
  n=$t/$id.$3
  mkdir -p "$n/workspace" "$n/home" "$n/var-tmp"
  chmod 1777 "$n/var-tmp"
  chmod 0755 "$n"
  mv -T "$n" "$t/$id" 2>/dev/null || rm -rf "$n"
  echo ok;;
templates)
  mkdir -p "$t"; chmod 0700 "$t"
  # Templates a process died making.
  find "$t" -mindepth 1 -maxdepth 1 -name '*.*' -mmin +10 -exec rm -rf {} + 2>/dev/null || true
  for x in "$t"/*; do [ -d "$x" ] && printf '%s\n' "\${x##*/}"; done; true;;
drop-template)
  rm -rf "$t/$id"
  echo ok;;
mount)
  [ -f "$d/disk.img" ] || { echo "disk $id is gone" >&2; exit 3; }
  if ! mountpoint -q "$d/mnt"; then
    # No journal: after a host crash, a check first (0 clean, 1 repaired).
    e2fsck -p "$d/disk.img" >/dev/null 2>&1 || [ $? -le 1 ] || {
      echo "the sandbox's disk needs a manual repair: e2fsck -f $d/disk.img on the engine's host" >&2; exit 5; }
    mount -o ${MOUNT_OPTIONS} "$d/disk.img" "$d/mnt"
  fi
  echo ok;;
release)
  [ -d "$d" ] || { echo ok; exit 0; }
  if mountpoint -q "$d/mnt"; then umount "$d/mnt" || umount -l "$d/mnt"; fi
  rm -f "$d/disk.img" "$d/owner"
  rmdir "$d/mnt" 2>/dev/null || true
  rmdir "$d"
  echo ok;;
list)
  mkdir -p "$root"
  for x in "$root"/*/; do
    [ -d "$x" ] || continue
    x=\${x%/}; n=\${x##*/}
    [ "$n" = templates ] && continue
    printf '%s %s %s\\n' "$n" "$(stat -c %Y "$x")" "$(cat "$x/owner" 2>/dev/null || echo -)"
  done;;
*) echo "unknown op $op" >&2; exit 2;;
esac
`;

export interface Disk {
  id: string;
  sizeMb: number;
  /** Container mounts of its places (binds of the disk's subdirectories). */
  mounts: Dockerode.MountSettings[];
}

export interface DiskInfo {
  id: string;
  /** Seconds since the epoch (the disk directory's mtime). */
  madeAt: number;
  owner: string;
}

/**
 * The disk id a container's labels name, if any. A snapshot's image carries the label empty (so
 * sandboxes made from it do not inherit their source's disk): that is no disk.
 */
export function diskOf(labels: Record<string, string> | undefined): string | undefined {
  const id = labels?.[DISK_LABEL.disk];
  return id !== undefined && /^[0-9a-f]{16}$/.test(id) ? id : undefined;
}

export class LoopDisks {
  readonly #docker: Dockerode;
  readonly #image: (() => Promise<string>) | undefined;
  #helper?: Promise<string>;
  /** Ready disks of this process, by "size/image". */
  readonly #spares = new Map<string, Disk[]>();
  /** Spares being made, by "size/image". */
  readonly #making = new Map<string, number>();
  /** Ids of this process's disks with no container yet (spares, disks being made or handed out): never reclaimed. */
  readonly #own = new Set<string>();
  readonly #spareCount: number;
  #closed = false;
  /** Spares being made and disks being released: close() waits for them. */
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(docker: Dockerode, image: (() => Promise<string>) | undefined, spares: number) {
    this.#docker = docker;
    this.#image = image;
    this.#spareCount = spares;
  }

  /**
   * A disk of `sizeMb` for a new sandbox of `image` (its engine id), holding that image's
   * /workspace and home directory: a spare when one is ready, else made now.
   */
  async take(sizeMb: number, image: string): Promise<Disk> {
    const key = `${sizeMb}/${image}`;
    const spare = this.#spares.get(key)?.shift();
    this.#refill(sizeMb, image);
    return spare ?? this.#make(sizeMb, image, newId());
  }

  /**
   * The disk's container exists now (or its create failed and the disk was released): from here
   * on the container's label keeps the sweeper off it. Until then it is this process's own.
   */
  adopted(id: string): void {
    this.#own.delete(id);
  }

  /** Keeps `spares` disks of this size and image ready (called after each take, and to warm up). */
  warm(sizeMb: number, image: string): void {
    this.#refill(sizeMb, image);
  }

  #refill(sizeMb: number, image: string): void {
    if (this.#closed) return;
    const key = `${sizeMb}/${image}`;
    const ready = (this.#spares.get(key)?.length ?? 0) + (this.#making.get(key) ?? 0);
    for (let i = ready; i < this.#spareCount; i++) {
      this.#making.set(key, (this.#making.get(key) ?? 0) + 1);
      const id = newId();
      const making = this.#make(sizeMb, image, id)
        .then(
          (disk) => {
            if (this.#closed) return this.release(disk.id).catch(() => {});
            const list = this.#spares.get(key) ?? [];
            list.push(disk);
            this.#spares.set(key, list);
          },
          () => this.#own.delete(id), // the sweeper releases whatever half-made disk is left
        )
        .finally(() => {
          this.#making.set(key, (this.#making.get(key) ?? 1) - 1);
          this.#inFlight.delete(making);
        });
      this.#inFlight.add(making);
    }
  }

  async #make(sizeMb: number, image: string, id: string): Promise<Disk> {
    this.#own.add(id);
    try {
      await this.#template(image);
      await this.#run(["prepare", id, String(sizeMb), String(BYTES_PER_INODE), processOwner(), hex(image)]);
    } catch (err) {
      await this.release(id).catch(() => {});
      this.#own.delete(id); // what is left, the sweeper's
      throw err;
    }
    const mounts = DISK_PLACES.map(({ sub, target }) => ({
      Type: "bind" as const,
      Source: `${DISK_ROOT}/${id}/mnt/${sub}`,
      Target: target,
      ReadOnly: false,
    }));
    return { id, sizeMb, mounts };
  }

  /** Templates known to exist on the engine's host, by image id. */
  readonly #templates = new Map<string, Promise<void>>();

  /**
   * The image's own /workspace and home directory, copied once per image to the engine's host
   * (templates/<image id>), from where mkfs copies them into each new disk: the engine's volume
   * copy-up, without a volume per place.
   */
  #template(image: string): Promise<void> {
    let made = this.#templates.get(image);
    if (!made) {
      made = this.#makeTemplate(image).catch((err: unknown) => {
        this.#templates.delete(image);
        throw err;
      });
      this.#templates.set(image, made);
    }
    return made;
  }

  async #makeTemplate(image: string): Promise<void> {
    if ((await this.#run(["has-template", hex(image)])).trim() === "yes") return;
    const token = newId();
    const temp = await this.#docker.createContainer({
      Image: image,
      Labels: { [DISK_LABEL.helper]: "template" },
      HostConfig: { NetworkMode: "none", LogConfig: { Type: "none", Config: {} } },
    });
    try {
      for (const { sub, target } of DISK_PLACES) {
        if (sub === "var-tmp") continue;
        let tar: NodeJS.ReadableStream;
        try {
          tar = (await temp.getArchive({ path: target })) as NodeJS.ReadableStream;
        } catch (err) {
          if ((err as { statusCode?: number }).statusCode === 404) continue; // the image has none
          throw err;
        }
        await this.#runWithInput(["untar", hex(image), token, sub], tar);
      }
      await this.#run(["template-done", hex(image), token]);
    } finally {
      await temp.remove({ force: true }).catch(() => {});
    }
  }

  /** One exec of SCRIPT with `input` on its stdin (a template's tar). */
  async #runWithInput(args: string[], input: NodeJS.ReadableStream): Promise<void> {
    const helper = await this.#ensureHelper();
    const exec = await this.#docker.getContainer(helper).exec({
      Cmd: ["sh", "-c", ENTER, "kiln-disk", ...args],
      Env: [`KILN_DISK_SCRIPT=${SCRIPT}`],
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
    });
    const socket = (await exec.start({ hijack: true, stdin: true })) as unknown as Duplex;
    let out = "";
    const demux = new StreamDemuxer(
      (c) => {
        out += c.toString("utf8");
      },
      (c) => {
        out += c.toString("utf8");
      },
    );
    const done = new Promise<void>((resolve, reject) => {
      socket.on("data", (c: Buffer) => demux.push(c));
      socket.on("end", resolve);
      socket.on("close", resolve);
      socket.on("error", reject);
    });
    // The tar, then end of input (a half-close: the reply still comes back).
    await pipeline(input as Readable, socket, { end: true }).catch(() => {});
    await done;
    const { ExitCode } = (await exec.inspect()) as { ExitCode: number | null };
    if (ExitCode !== 0) throw new EngineError(`disk ${args[0]} ${args[1] ?? ""}: exited ${ExitCode}: ${out.trim()}`);
  }

  /** Mounts a disk again where it is not mounted (after a host reboot); before every non-first start. */
  async ensureMounted(id: string): Promise<void> {
    await this.#run(["mount", id]);
  }

  /** Unmounts a disk (which frees its loop device) and deletes its image file. */
  async release(id: string): Promise<void> {
    await this.#run(["release", id]);
  }

  /**
   * release() off the caller's path (a delete need not wait for it); close() waits for it, and
   * the sweeper releases what a process that died meanwhile left.
   */
  releaseLater(id: string): Promise<void> {
    const releasing: Promise<void> = this.release(id)
      .catch(() => {})
      .finally(() => this.#inFlight.delete(releasing));
    this.#inFlight.add(releasing);
    // After close() nobody waits for it: the caller does.
    return this.#closed ? releasing : Promise.resolve();
  }

  /** Every disk on the engine's host. */
  async list(): Promise<DiskInfo[]> {
    const out = await this.#run(["list"]);
    return out
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => {
        const [id = "", madeAt = "0", owner = "-"] = line.split(" ");
        return { id, madeAt: Number(madeAt), owner };
      });
  }

  /**
   * Releases disks no container refers to (`inUse`): those whose owner process is gone, and this
   * process's own that are not its spares once older than DISK_GRACE_MS (another live process's
   * are its own sweeper's to judge). Returns their ids.
   */
  async reclaim(
    inUse: Set<string>,
    ownerAlive: (owner: string | undefined) => boolean,
    now = Date.now(),
  ): Promise<string[]> {
    if (!(await this.#helperExists())) return [];
    const released: string[] = [];
    for (const disk of await this.list()) {
      if (inUse.has(disk.id) || this.#own.has(disk.id)) continue;
      // This process's own (or one being prepared, whose owner is not written yet) only past the
      // grace: a create may be about to refer to it. A dead process's at once (a spare it left,
      // or a create it never finished); another live process's are its own sweeper's.
      const young = now - disk.madeAt * 1000 < DISK_GRACE_MS;
      if (disk.owner === processOwner() || disk.owner === "-") {
        if (young) continue;
      } else if (ownerAlive(disk.owner)) continue;
      try {
        await this.release(disk.id);
        released.push(disk.id);
      } catch {
        // the next sweep tries again
      }
    }
    // Containers a process died making a template from.
    const temps = await this.#docker.listContainers({
      all: true,
      filters: { label: [`${DISK_LABEL.helper}=template`] },
    });
    for (const c of temps) {
      if (now - c.Created * 1000 > DISK_GRACE_MS)
        await this.#docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => {});
    }
    // Templates of images that are gone (deleted snapshots).
    for (const image of (await this.#run(["templates"])).split("\n").filter((x) => /^[0-9a-f]{64}$/.test(x))) {
      const exists = await this.#docker
        .getImage(`sha256:${image}`)
        .inspect()
        .then(
          () => true,
          (err: { statusCode?: number }) => err.statusCode !== 404,
        );
      if (!exists) {
        this.#templates.delete(`sha256:${image}`);
        await this.#run(["drop-template", image]).catch(() => {});
      }
    }
    return released;
  }

  /** Releases this process's spares (Kiln.close). */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#inFlight);
    const spares = [...this.#spares.values()].flat();
    this.#spares.clear();
    await Promise.all(
      spares.map((d) =>
        this.release(d.id)
          .catch(() => {})
          .finally(() => this.#own.delete(d.id)),
      ),
    );
  }

  async #helperExists(): Promise<boolean> {
    try {
      await this.#docker.getContainer(DISK_HELPER_NAME).inspect();
      return true;
    } catch {
      return false;
    }
  }

  /** The shared helper, running. NotSupportedError when the engine refuses to run it. */
  #ensureHelper(): Promise<string> {
    this.#helper ??= this.#startHelper().catch((err: unknown) => {
      this.#helper = undefined;
      const e = err as { statusCode?: number; json?: { message?: string }; message?: string };
      // Refused (rootless engine, no device cgroup rules, no such capability): not this engine.
      if (e.statusCode === 400 || e.statusCode === 500) throw unsupported(e.json?.message ?? e.message ?? String(err));
      throw err;
    });
    return this.#helper;
  }

  async #startHelper(): Promise<string> {
    const container = this.#docker.getContainer(DISK_HELPER_NAME);
    try {
      const raw = await container.inspect();
      if (raw.Config.Labels?.[DISK_LABEL.helper] === HELPER_VERSION) {
        if (!raw.State.Running) await container.start().catch(ignore304);
        return raw.Id;
      }
      // An older Kiln's helper: made again with this version's configuration.
      await container.remove({ force: true }).catch(() => {});
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    if (!this.#image)
      throw new NotSupportedError("disk caps on this engine need Kiln's runtime image for their helper");
    const image = await this.#image();
    try {
      const created = await this.#docker.createContainer({
        name: DISK_HELPER_NAME,
        Image: image,
        User: "0:0",
        Entrypoint: ["sleep", "infinity"],
        Cmd: [],
        Labels: { [DISK_LABEL.helper]: HELPER_VERSION },
        HostConfig: {
          // mkfs, loop devices and mounts in the engine's mount namespace: this one container is
          // root on the host. Not Privileged: that asks for every capability, and hosts whose
          // bounding set lacks one (this machine: CAP_SYS_RESOURCE) refuse it. SYS_PTRACE opens
          // dockerd's namespace, SYS_ADMIN mounts, the rules open loop devices and loop-control.
          // The host's /proc (read-only) finds dockerd; the helper keeps its own pid namespace,
          // so stopping it ends every request loop in it (and their channels) too.
          CapAdd: ["SYS_ADMIN", "SYS_PTRACE"],
          DeviceCgroupRules: ["b 7:* rwm", "c 10:237 rwm"],
          SecurityOpt: ["seccomp=unconfined"],
          Mounts: [{ Type: "bind", Source: "/proc", Target: "/host/proc", ReadOnly: true }],
          NetworkMode: "none",
          RestartPolicy: { Name: "no" },
          LogConfig: { Type: "none", Config: {} },
        },
      });
      await created.start().catch(ignore304);
      return created.id;
    } catch (err) {
      // Another process made it first.
      if ((err as { statusCode?: number }).statusCode === 409) {
        await container.start().catch(ignore304);
        return (await container.inspect()).Id;
      }
      throw err;
    }
  }

  /**
   * Runs SCRIPT with `args` on the engine's host: its output, or EngineError with it. Requests
   * go over one long-lived exec per process (an exec costs ~200 ms of engine work here; a line
   * on an open stream, nothing), opened on first use and again after it ends.
   */
  async #run(args: string[], retry = true): Promise<string> {
    const channel = await this.#openChannel();
    const seq = ++this.#seq;
    const reply = new Promise<{ rc: number; out: string }>((resolve, reject) => {
      channel.pending.set(seq, { resolve, reject });
    });
    // A helper that stopped answering (frozen, or its loop orphaned): this channel is done.
    const timer = setTimeout(() => channel.stream.destroy(), REQUEST_TIMEOUT_MS);
    timer.unref();
    // Busy, the channel keeps the process alive; idle, it must not.
    (channel.stream as Partial<Socket>).ref?.();
    channel.stream.write(`${seq} ${args.join(" ")}\n`);
    let answer: { rc: number; out: string };
    try {
      answer = await reply.finally(() => {
        clearTimeout(timer);
        if (channel.pending.size === 0) (channel.stream as Partial<Socket>).unref?.();
      });
    } catch (err) {
      // The channel ended under the request (the helper was stopped: an engine restart): once
      // more on a new one. A prepare may have run halfway: its disk is released first.
      if (!retry) throw err;
      if (args[0] === "prepare") await this.#run(["release", args[1] as string], false);
      return this.#run(args, false);
    }
    const { rc, out } = answer;
    if (rc !== 0) {
      // A host that cannot: no mkfs.ext4 or mount there (127), no loop devices, no permission.
      if (rc === 127 || /not found|loop|Operation not permitted|Permission denied|nsenter/i.test(out)) {
        throw unsupported(out.trim());
      }
      throw new EngineError(`disk ${args[0]} ${args[1] ?? ""}: exited ${rc}: ${out.trim()}`);
    }
    return out;
  }

  #seq = 0;
  #channel?: Promise<Channel>;

  #openChannel(): Promise<Channel> {
    this.#channel ??= this.#startChannel(true).catch((err: unknown) => {
      this.#channel = undefined;
      throw err;
    });
    return this.#channel;
  }

  async #startChannel(retry: boolean): Promise<Channel> {
    const helper = await this.#ensureHelper();
    let exec: Dockerode.Exec;
    try {
      exec = await this.#docker.getContainer(helper).exec({
        Cmd: ["sh", "-c", ENTER],
        Env: [`KILN_DISK_SCRIPT=${SCRIPT}`, `KILN_DISK_LOOP=${LOOP}`],
        AttachStdin: true,
        AttachStdout: true,
        AttachStderr: true,
      });
    } catch (err) {
      // Stopped (engine restart) or removed: start or make it again, once.
      const status = (err as { statusCode?: number }).statusCode;
      if (retry && (status === 409 || status === 404)) {
        this.#helper = undefined;
        return this.#startChannel(false);
      }
      throw err;
    }
    const socket = (await exec.start({ hijack: true, stdin: true })) as unknown as Duplex;
    const channel: Channel = { stream: socket, pending: new Map() };
    let buffered = "";
    const demux = new StreamDemuxer(
      (chunk) => {
        buffered += chunk.toString("utf8");
        let nl = buffered.indexOf("\n");
        while (nl >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          const [seq = "", rc = "", ...rest] = line.split(" ");
          const waiter = channel.pending.get(Number(seq));
          channel.pending.delete(Number(seq));
          waiter?.resolve({ rc: Number(rc), out: rest.join(" ").replaceAll("\x1f", "\n") });
          nl = buffered.indexOf("\n");
        }
      },
      () => {},
    );
    const ended = () => {
      if (this.#channel && channel === this.#current) this.#channel = undefined;
      for (const waiter of channel.pending.values()) waiter.reject(new EngineError("the disk helper's channel ended"));
      channel.pending.clear();
    };
    socket.on("data", (c: Buffer) => demux.push(c));
    socket.on("end", ended);
    socket.on("close", ended);
    socket.on("error", ended);
    this.#current = channel;
    return channel;
  }

  #current?: Channel;
}

interface Channel {
  stream: Duplex;
  pending: Map<number, { resolve(v: { rc: number; out: string }): void; reject(err: Error): void }>;
}

function unsupported(detail: string): NotSupportedError {
  return new NotSupportedError(
    `resources.diskMb: this engine cannot make a loop-mounted disk on its host (${detail}); it needs a Linux engine that runs a container with SYS_ADMIN and loop devices, and mkfs.ext4 on its host (KILN_LOOP_DISKS=0 turns loop disks off)`,
  );
}

/** An engine image id without its "sha256:". */
function hex(image: string): string {
  return image.replace(/^sha256:/, "");
}

function newId(): string {
  return randomBytes(8).toString("hex");
}

function ignore304(err: { statusCode?: number }): void {
  if (err.statusCode !== 304) throw err;
}

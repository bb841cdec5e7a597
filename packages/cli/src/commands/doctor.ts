/**
 * doctor: is everything in place? Locally: Node, the Docker engine, the runtime image (present
 * or buildable), disk space. Remotely: Node, the server's /healthz, the API key. Each failed
 * check says how to fix it; exit 1 if any failed.
 */
import { existsSync } from "node:fs";
import { statfs } from "node:fs/promises";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";
import { spinner } from "@clack/prompts";
import type { Kiln } from "@kiln/core";
import type { Scope } from "@kiln/core/vocabulary";
import type { Command } from "commander";
import { type CommonOptions, connect, resolveTarget, type Target, withCommonOptions } from "../context.ts";
import { EXIT_FAILURE, ExitCode, kilnErrorCode } from "../errors.ts";
import { examples } from "../help.ts";
import { formatBytes, out, printJson } from "../output.ts";
import { VERSION } from "../version.ts";

/** The scope `kiln.list()` needs: the key check passes without it, with a note. */
const LIST_SCOPE: Scope = "sandboxes:read";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** How to fix it; set when ok is false. */
  fix?: string;
}

const MIN_NODE_MAJOR = 22;
/** A sandbox's writable layer, a snapshot or an image build needs room; under this, creates start failing. */
const MIN_FREE_BYTES = 2 * 1024 ** 3;
/** Runtime images carry this label (core's engine/labels.ts). */
const RUNTIME_LABEL = { "kiln.image": "runtime" };
/** Bases core builds the runtime image from when no runtime image is present. */
const BASES = ["kiln-base:bookworm", "debian:bookworm-slim"];
const HEALTH_TIMEOUT_MS = 5_000;

export function registerDoctor(program: Command): void {
  withCommonOptions(
    program
      .command("doctor")
      .description("Check the engine, the runtime image, Node and disk space (or the server and the key)")
      .option("--fix", "build the runtime image now when it is missing (about 2 minutes)")
      .addHelpText("after", examples("kiln doctor", "kiln doctor --url http://host:7420 --api-key $KEY --json")),
  ).action(async (flags: CommonOptions & { fix?: boolean }) => {
    const target = await resolveTarget(flags);
    const kiln = await connect(target);
    let checks: Check[];
    try {
      checks = [
        checkNode(),
        ...(target.mode === "local" ? await localChecks(kiln, flags.fix) : await remoteChecks(kiln, target)),
      ];
    } finally {
      await kiln.close().catch(() => {});
    }
    const ok = checks.every((c) => c.ok);
    if (flags.json) printJson({ ok, mode: target.mode, version: VERSION, checks });
    else {
      for (const c of checks) {
        process.stdout.write(`${c.ok ? out.green("✓") : out.red("✗")} ${c.name.padEnd(14)} ${c.detail}\n`);
        if (!c.ok && c.fix) process.stdout.write(`  ${out.yellow("fix:")} ${c.fix}\n`);
      }
    }
    if (!ok) throw new ExitCode(EXIT_FAILURE, `${checks.filter((c) => !c.ok).length} check(s) failed`);
  });
}

function checkNode(): Check {
  const major = Number(process.versions.node.split(".")[0]);
  return major >= MIN_NODE_MAJOR
    ? { name: "node", ok: true, detail: `v${process.versions.node}` }
    : {
        name: "node",
        ok: false,
        detail: `v${process.versions.node} is older than ${MIN_NODE_MAJOR}`,
        fix: `install Node ${MIN_NODE_MAJOR} or newer (nodejs.org, or scripts/setup.sh in a checkout)`,
      };
}

async function localChecks(kiln: Kiln, fix: boolean | undefined): Promise<Check[]> {
  const checks: Check[] = [];
  const engine = kiln.engine;
  try {
    await engine.ping();
    const info = await engine.info();
    checks.push({ name: "engine", ok: true, detail: `Docker answers (${info.os}/${info.arch}, ${info.storage})` });
  } catch (error) {
    checks.push({
      name: "engine",
      ok: false,
      detail: oneLine(error),
      fix: "start Docker (Docker Desktop, colima, or 'sudo systemctl start docker'), or set DOCKER_HOST to a running engine",
    });
    checks.push({ name: "runtime image", ok: false, detail: "not checked: no engine", fix: "start the engine first" });
    checks.push(await checkDisk());
    return checks;
  }
  checks.push(await checkImage(kiln, fix));
  checks.push(await checkDisk());
  return checks;
}

async function checkImage(kiln: Kiln, fix: boolean | undefined): Promise<Check> {
  const engine = kiln.engine;
  const present = (await engine.listImages(RUNTIME_LABEL))
    .flatMap((i) => i.tags)
    .filter((t) => t.startsWith("kiln-runtime:"));
  if (present.length > 0) return { name: "runtime image", ok: true, detail: `present (${present.join(", ")})` };
  if (fix) {
    const spin = process.stderr.isTTY ? spinner({ output: process.stderr, withGuide: false }) : undefined;
    spin?.start("building the runtime image");
    try {
      const tag = await kiln.images.ensure({
        onProgress: (e) => (spin ? spin.message(e.message.slice(0, 70)) : process.stderr.write(`${e.message}\n`)),
      });
      spin?.stop(`built ${tag}`);
      return { name: "runtime image", ok: true, detail: `built ${tag}` };
    } catch (error) {
      spin?.error("the build failed");
      return {
        name: "runtime image",
        ok: false,
        detail: `build failed: ${oneLine(error)}`,
        fix: "see the message above",
      };
    }
  }
  for (const base of BASES) {
    if (await engine.imageExists(base)) {
      return {
        name: "runtime image",
        ok: true,
        detail: `not built yet; buildable from ${base} (the first create builds it, or kiln doctor --fix)`,
      };
    }
  }
  if (process.platform === "linux" && process.getuid?.() === 0 && onPath("debootstrap")) {
    return {
      name: "runtime image",
      ok: true,
      detail: "not built yet; buildable with debootstrap (kiln doctor --fix, about 2 minutes)",
    };
  }
  return {
    name: "runtime image",
    ok: false,
    detail: "missing, and no Debian base to build it from (no debian:bookworm-slim, no debootstrap)",
    fix: "docker pull debian:bookworm-slim (or, as root on Linux, apt-get install debootstrap), then kiln doctor --fix",
  };
}

async function checkDisk(): Promise<Check> {
  const path = ["/var/lib/docker", join(homedir(), ".kiln"), homedir()].find((p) => existsSync(p)) ?? "/";
  try {
    const fs = await statfs(path);
    const free = fs.bavail * fs.bsize;
    return free >= MIN_FREE_BYTES
      ? { name: "disk", ok: true, detail: `${formatBytes(free)} free on ${path}` }
      : {
          name: "disk",
          ok: false,
          detail: `${formatBytes(free)} free on ${path}, under ${formatBytes(MIN_FREE_BYTES)}`,
          fix: "free space: kiln snapshot rm / kiln rm what you no longer need, docker image prune",
        };
  } catch (error) {
    return {
      name: "disk",
      ok: false,
      detail: `cannot read free space of ${path}: ${oneLine(error)}`,
      fix: "check that the path is readable",
    };
  }
}

async function remoteChecks(kiln: Kiln, target: Extract<Target, { mode: "remote" }>): Promise<Check[]> {
  const checks: Check[] = [];
  let healthy = false;
  try {
    const res = await fetch(`${target.url}/healthz`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
    const body = (await res.json().catch(() => ({}))) as { status?: string; engine?: string; version?: string };
    healthy = res.ok && body.status === "ok";
    if (!healthy) {
      checks.push({
        name: "server",
        ok: false,
        detail: `${target.url}/healthz answered ${res.status}`,
        fix: "is this a Kiln server? check the URL (kiln login)",
      });
    } else if (body.engine !== "ok") {
      checks.push({
        name: "server",
        ok: false,
        detail: `${target.url} is up (version ${body.version ?? "?"}) but its engine is ${body.engine ?? "unknown"}`,
        fix: "start Docker on the server's machine (kiln doctor there says how)",
      });
    } else
      checks.push({ name: "server", ok: true, detail: `${target.url} (version ${body.version ?? "?"}, engine ok)` });
  } catch (error) {
    checks.push({
      name: "server",
      ok: false,
      detail: `${target.url} does not answer: ${oneLine(error)}`,
      fix: "start it (kiln serve) or check the URL (--url, KILN_URL, kiln login)",
    });
  }
  if (!healthy) {
    checks.push({ name: "api key", ok: false, detail: "not checked: no server", fix: "reach the server first" });
    return checks;
  }
  try {
    await kiln.list();
    checks.push({
      name: "api key",
      ok: true,
      detail: `accepted (${target.apiKey.slice(0, 9)}…, from ${target.source})`,
    });
  } catch (error) {
    const code = kilnErrorCode(error);
    if (code === "FORBIDDEN") {
      checks.push({
        name: "api key",
        ok: true,
        detail: `accepted, but it may not list sandboxes (scope ${LIST_SCOPE})`,
      });
    } else {
      checks.push({
        name: "api key",
        ok: false,
        detail: code === "UNAUTHORIZED" ? "refused (unknown, revoked or expired)" : oneLine(error),
        fix: "get a valid key (the admin key is in <data-dir>/admin.key on the server) and run kiln login",
      });
    }
  }
  return checks;
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? "").split(delimiter).some((dir) => dir && existsSync(join(dir, command)));
}

function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split(/\r?\n/).filter(Boolean).join(" ");
}

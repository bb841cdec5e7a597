/** Pure helpers of the pages (no DOM, no network): parsing what people type, formatting what the API answers. */
import type { NetworkPolicy, SandboxInfo } from "./api.ts";

export function labelQuery(filter: string): string[] {
  return filter
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s.includes("="));
}

export function networkText(n: NetworkPolicy): string {
  return typeof n === "string" ? n : `allow ${n.allow.join(", ")}`;
}

/** "k=v, k2=v2" or one per line → { k: v }. */
export function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(/[\n,]+/)) {
    const i = part.indexOf("=");
    if (i <= 0) continue;
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

/** "30m", "2h", "90s" or a number of minutes → milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? "m"] ?? 60_000;
  return Math.round(Number(m[1]) * unit);
}

export function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? `${dir}${name}` : `${dir}/${name}`;
}

export function parentOf(path: string): string {
  const i = path.replace(/\/+$/, "").lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

export function base64Utf8(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function usage(sandboxes: SandboxInfo[]) {
  const running = sandboxes.filter((s) => s.state === "running");
  return {
    sandboxes: sandboxes.length,
    running: running.length,
    cpus: Math.round(running.reduce((n, s) => n + s.resources.cpus, 0) * 100) / 100,
    memoryMb: running.reduce((n, s) => n + s.resources.memoryMb, 0),
  };
}

export function matches(
  e: { action: string; keyId: string | null; target: string | null },
  f: { action: string; key: string; sandbox: string },
): boolean {
  if (f.action && !e.action.includes(f.action)) return false;
  if (f.key && !(e.keyId ?? "").includes(f.key)) return false;
  if (f.sandbox && !(e.target ?? "").includes(f.sandbox)) return false;
  return true;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

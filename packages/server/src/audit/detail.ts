/**
 * What an audit event's `detail` holds per action: the action's parameters, never stdin, env
 * values, file bodies, code or secrets (design/server.md). `body` is the request's JSON body as
 * sent (unvalidated: every field is checked for its type here), `query` its query parameters.
 */
import { hash } from "node:crypto";

type Json = Record<string, unknown>;

const pick = (body: Json, fields: string[]): Json => {
  const out: Json = {};
  for (const f of fields) if (body[f] !== undefined) out[f] = body[f];
  return out;
};
const envKeys = (env: unknown) =>
  typeof env === "object" && env !== null && !Array.isArray(env) ? { envKeys: Object.keys(env) } : {};
/** Long strings (a command with a heredoc) are cut: the audit log is a record, not an archive. */
const cut = (v: unknown) => (typeof v === "string" && v.length > 4096 ? `${v.slice(0, 4096)}…` : v);

const DETAIL: Record<string, (body: Json, query: Record<string, string>) => Json | undefined> = {
  "sandbox.create": (b) => ({
    ...pick(b, ["name", "image", "snapshot", "language", "resources", "network", "labels", "volumes"]),
    ...envKeys(b.env),
  }),
  "sandbox.exec": (b) => ({ command: cut(b.command), ...pick(b, ["cwd", "timeoutMs"]), ...envKeys(b.env) }),
  "sandbox.code": (b) =>
    typeof b.code === "string"
      ? {
          ...pick(b, ["language", "context"]),
          codeBytes: Buffer.byteLength(b.code),
          codeSha256: hash("sha256", b.code, "hex"),
        }
      : pick(b, ["language", "context"]),
  "files.write": (_b, q) => pick(q, ["path"]),
  "files.delete": (_b, q) => pick(q, ["path", "recursive"]),
  "files.mkdir": (b) => pick(b, ["path"]),
  "snapshot.create": (b) => pick(b, ["name"]),
  "volume.create": (b) => pick(b, ["name"]),
  "pty.open": (b) => ({ ...pick(b, ["cols", "rows", "cwd"]), command: cut(b.command), ...envKeys(b.env) }),
  "process.start": (b) => ({ command: cut(b.command), ...pick(b, ["cwd", "tag"]), ...envKeys(b.env) }),
  "process.signal": (b) => pick(b, ["signal"]),
  "preview.create": (b) => pick(b, ["expiresInMs"]),
  "network.update": (b) => pick(b, ["network"]),
  "key.create": (b) => pick(b, ["name", "scopes", "orgId", "sandboxId", "expiresAt"]),
  "org.create": (b) => pick(b, ["name", "quotas", "network"]),
  "org.network": (b) => pick(b, ["default", "ceiling"]),
  "org.quotas": (b) => pick(b, ["maxSandboxes", "maxCpus", "maxMemoryMb", "createsPerMinute"]),
  // The URL without its query or fragment (a receiver's token often rides there).
  "webhook.create": (b) => ({
    ...(typeof b.url === "string" ? { url: b.url.replace(/[?#].*$/, "") } : {}),
    ...pick(b, ["events"]),
  }),
};

/** How deep and how wide a detail's values are kept: the body is unvalidated and may be hostile. */
const MAX_DEPTH = 6;
const MAX_ENTRIES = 64;

/**
 * A copy of an unvalidated value the audit log can always store: strings cut, at most
 * MAX_ENTRIES per array or object, nothing below MAX_DEPTH (a refused request with 100,000 nested
 * arrays once overflowed JSON.stringify in the store and lost its audit event).
 */
function bounded(v: unknown, depth = 0): unknown {
  if (typeof v === "string") return cut(v);
  if (typeof v !== "object" || v === null) return v;
  if (depth >= MAX_DEPTH) return "…";
  if (Array.isArray(v)) {
    const kept = v.slice(0, MAX_ENTRIES).map((x) => bounded(x, depth + 1));
    return v.length > MAX_ENTRIES ? [...kept, "…"] : kept;
  }
  const out: Json = {};
  for (const [k, x] of Object.entries(v).slice(0, MAX_ENTRIES)) out[cut(k) as string] = bounded(x, depth + 1);
  return out;
}

export function auditDetail(action: string, body: unknown, query: Record<string, string>): Json | undefined {
  const fn = DETAIL[action];
  if (!fn) return undefined;
  const b = typeof body === "object" && body !== null && !Array.isArray(body) ? (body as Json) : {};
  const detail = fn(b, query);
  return detail === undefined || Object.keys(detail).length === 0 ? undefined : (bounded(detail, -1) as Json);
}

/**
 * The dashboard's one door to Kiln: the public HTTP API (design/server.md), same origin, with the
 * HttpOnly session cookie the browser sends by itself. Every call that changes something carries
 * `x-kiln-csrf: 1` (the server refuses cookie-authenticated changes without it). A 401 anywhere
 * means the session ended (signed out, key revoked or expired): the app shows the sign-in page.
 */
import type { Scope } from "@kiln/core/vocabulary";
import { signal } from "@preact/signals";

export interface ApiErrorBody {
  code: string;
  message: string;
  field?: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  constructor(status: number, body: ApiErrorBody) {
    super(body.message);
    this.name = "ApiError";
    this.status = status;
    this.code = body.code;
    this.field = body.field;
  }
}

export interface Me {
  org: { id: string; name: string };
  key: { id: string; name: string; prefix: string };
  scopes: string[];
  sandboxId?: string;
  expiresAt?: string;
  via: "session" | "bearer" | "ticket";
}

/** Who is signed in: undefined while unknown, null when nobody. */
export const me = signal<Me | null | undefined>(undefined);

export interface RequestOptions {
  method?: string;
  body?: unknown;
  /** A raw body (file upload), sent as is. */
  raw?: BodyInit;
  query?: Record<string, string | string[] | undefined>;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export function url(path: string, query?: RequestOptions["query"]): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) params.append(k, one);
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/** The raw Response of a successful call; throws ApiError otherwise. */
export async function request(path: string, o: RequestOptions = {}): Promise<Response> {
  const method = o.method ?? "GET";
  const headers: Record<string, string> = { ...o.headers };
  if (method !== "GET" && method !== "HEAD") headers["x-kiln-csrf"] = "1";
  let body: BodyInit | undefined = o.raw;
  if (o.body !== undefined) {
    body = JSON.stringify(o.body);
    headers["content-type"] = "application/json";
  }
  let res: Response;
  try {
    res = await fetch(url(path, o.query), {
      method,
      headers,
      body: body ?? null,
      credentials: "same-origin",
      ...(o.signal ? { signal: o.signal } : {}),
    });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw new ApiError(0, { code: "NETWORK", message: "The Kiln server did not answer: is it running?" });
  }
  if (res.ok) return res;
  let error: ApiErrorBody = { code: `HTTP_${res.status}`, message: `${res.status} ${res.statusText}` };
  try {
    const parsed = (await res.json()) as { error?: ApiErrorBody };
    if (parsed.error && typeof parsed.error.message === "string") error = parsed.error;
  } catch {
    // not JSON: keep the status line
  }
  // The session ended (signed out elsewhere, key revoked or expired): back to sign-in.
  if (res.status === 401 && path !== "/v1/session") me.value = null;
  throw new ApiError(res.status, error);
}

export async function api<T>(path: string, o: RequestOptions = {}): Promise<T> {
  const res = await request(path, o);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Reads a Server-Sent Events answer, calling onEvent for each JSON event. */
export async function stream(
  path: string,
  o: RequestOptions,
  onEvent: (event: Record<string, unknown>) => void,
): Promise<void> {
  const res = await request(path, { ...o, headers: { ...o.headers, accept: "text/event-stream" } });
  const reader = res.body?.pipeThrough(new TextDecoderStream()).getReader();
  if (!reader) return;
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const chunk = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = chunk
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n");
      if (data) {
        try {
          onEvent(JSON.parse(data) as Record<string, unknown>);
        } catch {
          // a keep-alive or a partial line: ignore
        }
      }
      end = buffer.indexOf("\n\n");
    }
  }
}

export async function signIn(apiKey: string): Promise<Me> {
  const who = await api<Me>("/v1/session", { method: "POST", body: { apiKey } });
  me.value = who;
  return who;
}

export async function signOut(): Promise<void> {
  await api("/v1/session", { method: "DELETE" }).catch(() => {});
  me.value = null;
}

export async function whoAmI(): Promise<void> {
  try {
    me.value = await api<Me>("/v1/session");
  } catch {
    me.value = null;
  }
}

export function can(scope: Scope): boolean {
  const who = me.value;
  if (!who) return false;
  return who.scopes.includes("*") || who.scopes.includes(scope);
}

// Shapes of the answers (design/server.md, design/api.md).
export type NetworkPolicy = "none" | "egress" | { allow: string[] };
export interface SandboxInfo {
  id: string;
  name?: string;
  state: "running" | "paused" | "stopped" | "error";
  labels: Record<string, string>;
  createdAt: string;
  image: string;
  language: "python" | "javascript" | "typescript";
  network: NetworkPolicy;
  resources: { cpus: number; memoryMb: number; pids: number; diskMb?: number };
}
export interface FileEntry {
  name: string;
  path: string;
  type: "file" | "directory" | "symlink" | "other";
  size: number;
  mode: number;
  modifiedAt: string;
}
export interface Result {
  text?: string;
  html?: string;
  markdown?: string;
  json?: unknown;
  png?: string;
  jpeg?: string;
  svg?: string;
  isMainResult: boolean;
}
export interface Execution {
  results: Result[];
  stdout: string;
  stderr: string;
  error?: { name: string; value: string; traceback: string };
  status: "ok" | "error" | "timeout" | "oom" | "killed";
  truncated: boolean;
  durationMs: number;
}

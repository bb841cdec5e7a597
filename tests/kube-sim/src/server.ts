/**
 * The HTTP(S) front: authentication, discovery, REST routing onto Api, list/watch, and the
 * pods/log and pods/exec subresources.
 *
 * - Paths: https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-uris
 * - Bearer tokens, 401 with a Status: https://kubernetes.io/docs/reference/access-authn-authz/authentication/#static-token-file
 * - Discovery documents: https://kubernetes.io/docs/concepts/overview/kubernetes-api/#discovery-api
 *   (the unaggregated /api, /api/v1, /apis, /apis/<group>/<version>)
 * - Watch: https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
 *   (newline-delimited JSON events ADDED/MODIFIED/DELETED/BOOKMARK/ERROR; without a
 *   resourceVersion, or with "0", the current objects first as synthetic ADDED events; from a
 *   resourceVersion, every change after it, or one ERROR event with a 410 Expired Status when it
 *   is too old; with a selector, an object that stops matching arrives as DELETED and one that
 *   starts matching as ADDED), #watch-bookmarks, and `timeoutSeconds`.
 */
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type Docker from "dockerode";
import { WebSocketServer } from "ws";
import type { Api, DeleteOptions } from "./api.ts";
import { parseExecQuery, pickProtocol, runExec } from "./exec.ts";
import type { Kubelet } from "./kubelet.ts";
import { apiVersionOf, findResource, RESOURCES, type ResourceDef } from "./resources.ts";
import { parseFieldSelector, parseLabelSelector } from "./selectors.ts";
import { ApiError, badRequest, gone, methodNotAllowed, notFound, unauthorized } from "./status.ts";
import type { Change, KObject } from "./store.ts";

export const KUBE_VERSION = { major: "1", minor: "33", gitVersion: "v1.33.0-kube-sim" };

interface Route {
  def: ResourceDef;
  ns?: string;
  name?: string;
  sub?: string;
  watchPath: boolean;
}

export interface ServerDeps {
  api: Api;
  kubelet: Kubelet;
  docker: Docker;
  token: string;
  address: () => string;
  bookmarkMs: number;
  log: (line: string) => void;
}

export class Handler {
  readonly #d: ServerDeps;
  readonly #wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => pickFrom(protocols) });
  readonly #open = new Set<{ end(): void }>();

  constructor(deps: ServerDeps) {
    this.#d = deps;
  }

  #authorized(req: IncomingMessage): boolean {
    const h = req.headers.authorization ?? "";
    const m = /^Bearer\s+(.+)$/i.exec(h);
    if (!m) return false;
    const a = Buffer.from(m[1]!.trim());
    const b = Buffer.from(this.#d.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  async request(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? "/", "http://sim");
      if (["/healthz", "/livez", "/readyz"].includes(url.pathname)) {
        res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
        return;
      }
      if (!this.#authorized(req)) throw unauthorized();
      const discovery = this.#discovery(url.pathname);
      if (discovery) return json(res, 200, discovery);
      const route = parseRoute(url.pathname);
      if (!route) throw notFound("", url.pathname);
      await this.#resource(req, res, url, route);
    } catch (err) {
      const e =
        err instanceof ApiError
          ? err
          : new ApiError(500, "InternalError", `Internal error occurred: ${(err as Error).message}`);
      if (!(err instanceof ApiError)) this.#d.log(`500: ${(err as Error).stack}`);
      if (!res.headersSent) json(res, e.code, e.toStatus());
      else res.end();
    }
  }

  async #resource(req: IncomingMessage, res: ServerResponse, url: URL, route: Route): Promise<void> {
    const { api } = this.#d;
    const { def, ns, name, sub } = route;
    const method = req.method ?? "GET";
    const q = url.searchParams;
    const dryRun = q.getAll("dryRun").includes("All");
    if (sub) {
      if (def.plural === "pods" && sub === "log" && method === "GET") return this.#log(res, api.get(def, ns, name!), q);
      if (def.plural === "pods" && sub === "exec")
        throw badRequest(
          "Upgrade request required: pods/exec is served over WebSocket (v5.channel.k8s.io, v4.channel.k8s.io)",
        );
      if (def.plural === "replicasets" && sub === "scale") return this.#scale(req, res, def, ns!, name!, method);
      if (sub === "status") {
        if (method === "GET") return json(res, 200, api.get(def, ns, name!));
        if (method === "PUT")
          return json(res, 200, api.update(def, ns, name!, await body(req), { subresource: "status", dryRun }));
        if (method === "PATCH")
          return json(
            res,
            200,
            api.patch(def, ns, name!, req.headers["content-type"] ?? "", await body(req), {
              subresource: "status",
              dryRun,
            }),
          );
      }
      throw notFound("", url.pathname);
    }
    if (name === undefined) {
      if (method === "GET") {
        if (route.watchPath || ["true", "1"].includes(q.get("watch") ?? "")) return this.#watch(req, res, def, ns, q);
        return this.#list(res, def, ns, q);
      }
      if (method === "POST") {
        if (!def.namespaced && ns) throw methodNotAllowed();
        return json(res, 201, api.create(def, ns, await body(req), { dryRun }));
      }
      if (method === "DELETE" && def.verbs.includes("delete")) {
        // deletecollection: every object the selectors match, each deleted as by DELETE; the
        // answer is the list of what was deleted (the generic registry's DeleteCollection).
        const labels = parseLabelSelector(q.get("labelSelector"));
        const fields = parseFieldSelector(def.plural, q.get("fieldSelector"));
        const grace = q.has("gracePeriodSeconds") ? Number(q.get("gracePeriodSeconds")) : undefined;
        const items = api
          .list(def, ns)
          .filter((o) => labels(o.metadata.labels) && fields(o))
          .map((o) => api.delete(def, o.metadata.namespace, o.metadata.name, { gracePeriodSeconds: grace, dryRun }));
        return json(res, 200, {
          kind: `${def.kind}List`,
          apiVersion: apiVersionOf(def),
          metadata: { resourceVersion: api.store.resourceVersion },
          items,
        });
      }
      throw methodNotAllowed();
    }
    switch (method) {
      case "GET":
        if (route.watchPath || ["true", "1"].includes(q.get("watch") ?? "")) {
          q.set("fieldSelector", `metadata.name=${name}`);
          return this.#watch(req, res, def, ns, q);
        }
        return json(res, 200, api.get(def, ns, name));
      case "PUT":
        return json(res, 200, api.update(def, ns, name, await body(req), { dryRun }));
      case "PATCH":
        return json(res, 200, api.patch(def, ns, name, req.headers["content-type"] ?? "", await body(req), { dryRun }));
      case "DELETE": {
        const b = ((await body(req, true)) ?? {}) as DeleteOptions & { dryRun?: string[] };
        const opts: DeleteOptions = {
          gracePeriodSeconds: q.has("gracePeriodSeconds") ? Number(q.get("gracePeriodSeconds")) : b.gracePeriodSeconds,
          propagationPolicy: (q.get("propagationPolicy") as DeleteOptions["propagationPolicy"]) ?? b.propagationPolicy,
          preconditions: b.preconditions,
          dryRun: dryRun || (Array.isArray(b.dryRun) && b.dryRun.includes("All")),
        };
        return json(res, 200, api.delete(def, ns, name, opts));
      }
      default:
        throw methodNotAllowed();
    }
  }

  #list(res: ServerResponse, def: ResourceDef, ns: string | undefined, q: URLSearchParams): void {
    const labels = parseLabelSelector(q.get("labelSelector"));
    const fields = parseFieldSelector(def.plural, q.get("fieldSelector"));
    const items = this.#d.api
      .list(def, ns)
      .filter((o) => labels(o.metadata.labels) && fields(o))
      .map((o) => {
        // Items of a typed list carry no kind/apiVersion of their own.
        const { kind: _k, apiVersion: _a, ...rest } = o;
        return rest;
      });
    json(res, 200, {
      kind: `${def.kind}List`,
      apiVersion: apiVersionOf(def),
      metadata: { resourceVersion: this.#d.api.store.resourceVersion },
      items,
    });
  }

  #watch(
    req: IncomingMessage,
    res: ServerResponse,
    def: ResourceDef,
    ns: string | undefined,
    q: URLSearchParams,
  ): void {
    const { store } = this.#d.api;
    const labels = parseLabelSelector(q.get("labelSelector"));
    const fields = parseFieldSelector(def.plural, q.get("fieldSelector"));
    const inScope = (o: KObject) => !def.namespaced || ns === undefined || o.metadata.namespace === ns;
    const matches = (o: KObject | undefined) => o !== undefined && inScope(o) && labels(o.metadata.labels) && fields(o);
    const rvParam = q.get("resourceVersion") ?? "";
    if (rvParam !== "" && !/^\d+$/.test(rvParam)) throw badRequest(`invalid resource version: ${rvParam}`);
    res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-cache, private" });
    res.flushHeaders();
    const send = (type: string, object: unknown) => res.write(`${JSON.stringify({ type, object })}\n`);
    const translate = (c: Change) => {
      if (c.resource !== def.plural) return;
      const now = matches(c.object);
      const before = c.type === "MODIFIED" ? matches(c.previous) : now;
      if (c.type === "ADDED" && now) send("ADDED", c.object);
      else if (c.type === "DELETED" && matches(c.previous)) send("DELETED", c.object);
      else if (c.type === "MODIFIED") {
        if (now && before) send("MODIFIED", c.object);
        else if (now) send("ADDED", c.object);
        else if (before) send("DELETED", c.object);
      }
    };
    let replay: Change[] | undefined = [];
    if (rvParam === "" || rvParam === "0") {
      for (const o of this.#d.api.list(def, ns)) if (matches(o)) send("ADDED", o);
    } else {
      const rv = Number(rvParam);
      replay = store.since(rv);
      if (replay === undefined) {
        send("ERROR", gone(`too old resource version: ${rv} (${store.oldestResumable})`).toStatus());
        res.end();
        return;
      }
    }
    for (const c of replay) translate(c);
    const unlisten = store.listen(translate);
    const bookmarks = q.get("allowWatchBookmarks") === "true";
    const tick = bookmarks
      ? setInterval(() => {
          send("BOOKMARK", {
            kind: def.kind,
            apiVersion: apiVersionOf(def),
            metadata: { resourceVersion: store.resourceVersion },
          });
        }, this.#d.bookmarkMs)
      : undefined;
    const timeout = q.has("timeoutSeconds")
      ? setTimeout(() => end(), Number(q.get("timeoutSeconds")) * 1000)
      : undefined;
    const handle = { end: () => end() };
    const end = () => {
      unlisten();
      if (tick) clearInterval(tick);
      if (timeout) clearTimeout(timeout);
      this.#open.delete(handle);
      if (!res.writableEnded) res.end();
    };
    this.#open.add(handle);
    req.on("close", end);
    res.on("close", end);
  }

  async #log(res: ServerResponse, pod: KObject, q: URLSearchParams): Promise<void> {
    const c = this.#d.kubelet.container(pod);
    const cname = pod.spec.containers[0].name;
    if (q.has("container") && q.get("container") !== cname)
      throw badRequest(`container ${q.get("container")} is not valid for pod ${pod.metadata.name}`);
    if (!c) {
      const reason = pod.status?.containerStatuses?.[0]?.state?.waiting?.reason ?? "ContainerCreating";
      throw badRequest(`container "${cname}" in pod "${pod.metadata.name}" is waiting to start: ${reason}`);
    }
    if (q.get("previous") === "true")
      throw badRequest(`previous terminated container "${cname}" in pod "${pod.metadata.name}" not found`);
    const container = this.#d.docker.getContainer(c.id);
    const tty = pod.spec.containers[0].tty === true;
    const follow = q.get("follow") === "true";
    const opts = {
      stdout: true,
      stderr: true,
      timestamps: q.get("timestamps") === "true",
      ...(q.has("tailLines") ? { tail: Number(q.get("tailLines")) } : {}),
      ...(q.has("sinceSeconds") ? { since: Math.floor(Date.now() / 1000) - Number(q.get("sinceSeconds")) } : {}),
    };
    let limit = q.has("limitBytes") ? Number(q.get("limitBytes")) : Number.POSITIVE_INFINITY;
    res.writeHead(200, { "Content-Type": "text/plain" });
    const write = (b: Buffer) => {
      if (limit <= 0) return;
      const part = b.subarray(0, Math.min(b.length, limit));
      limit -= part.length;
      res.write(part);
    };
    const demux = demuxer(tty, write);
    if (!follow) {
      const buf = (await container.logs({ ...opts, follow: false })) as unknown as Buffer;
      demux(Buffer.from(buf));
      res.end();
      return;
    }
    const stream = (await container.logs({ ...opts, follow: true })) as unknown as NodeJS.ReadableStream & {
      destroy(): void;
    };
    stream.on("data", (b: Buffer) => demux(b));
    stream.on("end", () => res.end());
    stream.on("error", () => res.end());
    res.on("close", () => stream.destroy());
  }

  async #scale(
    req: IncomingMessage,
    res: ServerResponse,
    def: ResourceDef,
    ns: string,
    name: string,
    method: string,
  ): Promise<void> {
    // The scale subresource (autoscaling/v1 Scale): "read/replace/patch scale" in
    // https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/replica-set-v1/
    const { api } = this.#d;
    const toScale = (rs: KObject) => ({
      kind: "Scale",
      apiVersion: "autoscaling/v1",
      metadata: {
        name: rs.metadata.name,
        namespace: rs.metadata.namespace,
        uid: rs.metadata.uid,
        resourceVersion: rs.metadata.resourceVersion,
        creationTimestamp: rs.metadata.creationTimestamp,
      },
      spec: { replicas: rs.spec.replicas },
      status: {
        replicas: rs.status?.replicas ?? 0,
        selector: Object.entries(rs.spec.selector?.matchLabels ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(","),
      },
    });
    const rs = api.get(def, ns, name);
    if (method === "GET") return json(res, 200, toScale(rs));
    let scale: KObject;
    if (method === "PUT") scale = (await body(req)) as KObject;
    else if (method === "PATCH") {
      const { jsonPatch, mergePatch } = await import("./patch.ts");
      const ct = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
      const b = await body(req);
      scale = ct === "application/json-patch+json" ? jsonPatch(toScale(rs), b) : mergePatch(toScale(rs), b);
    } else throw methodNotAllowed();
    const next = { ...rs, spec: { ...rs.spec, replicas: scale.spec?.replicas } };
    next.metadata = { ...rs.metadata, resourceVersion: scale.metadata?.resourceVersion || rs.metadata.resourceVersion };
    return json(res, 200, toScale(api.update(def, ns, name, next)));
  }

  /** An upgrade request: only pods/exec upgrades. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (e: ApiError) => {
      const text = JSON.stringify(e.toStatus());
      socket.end(
        `HTTP/1.1 ${e.code} ${e.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
      );
    };
    try {
      const url = new URL(req.url ?? "/", "http://sim");
      if (!this.#authorized(req)) throw unauthorized();
      const route = parseRoute(url.pathname);
      if (route?.def.plural !== "pods" || route.sub !== "exec" || !route.name) throw notFound("", url.pathname);
      const pod = this.#d.api.get(route.def, route.ns, route.name);
      const cname = pod.spec.containers[0].name;
      const container = url.searchParams.get("container");
      if (container && container !== cname)
        throw badRequest(`container ${container} is not valid for pod ${pod.metadata.name}`);
      if (pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed")
        throw badRequest(`cannot exec into a container in a completed pod; current phase is ${pod.status.phase}`);
      const c = this.#d.kubelet.container(pod);
      if (!c?.running) throw badRequest(`unable to upgrade connection: container not found ("${cname}")`);
      const r = parseExecQuery(url);
      if (r.command.length === 0) throw badRequest("you must specify at least 1 command");
      if (!pickProtocol(req))
        throw badRequest(
          `unable to upgrade connection: no supported subprotocol (supported: v5.channel.k8s.io, v4.channel.k8s.io)`,
        );
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        const handle = { end: () => ws.terminate() };
        this.#open.add(handle);
        ws.on("close", () => this.#open.delete(handle));
        runExec(ws, this.#d.docker, c.id, r).catch((err) => {
          this.#d.log(`exec: ${(err as Error).message}`);
          ws.terminate();
        });
      });
    } catch (err) {
      refuse(err instanceof ApiError ? err : new ApiError(500, "InternalError", (err as Error).message));
    }
  }

  #discovery(path: string): unknown {
    const p = path.replace(/\/+$/, "") || "/";
    if (p === "/version")
      return {
        ...KUBE_VERSION,
        gitCommit: "0000000000000000000000000000000000000000",
        gitTreeState: "clean",
        buildDate: "2026-01-01T00:00:00Z",
        goVersion: "go1.24",
        compiler: "gc",
        platform: "linux/amd64",
      };
    if (p === "/api")
      return {
        kind: "APIVersions",
        versions: ["v1"],
        serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: this.#d.address() }],
      };
    if (p === "/apis") {
      const groups = [...new Set(RESOURCES.filter((r) => r.group !== "").map((r) => r.group))];
      return {
        kind: "APIGroupList",
        apiVersion: "v1",
        groups: groups.map((g) => {
          const v = RESOURCES.find((r) => r.group === g)!.version;
          const gv = { groupVersion: `${g}/${v}`, version: v };
          return { name: g, versions: [gv], preferredVersion: gv };
        }),
      };
    }
    const m = /^\/api\/v1$|^\/apis\/([^/]+)\/([^/]+)$/.exec(p);
    if (!m) return undefined;
    const group = m[1] ?? "";
    const version = m[2] ?? "v1";
    const defs = RESOURCES.filter((r) => r.group === group && r.version === version);
    if (defs.length === 0) return undefined;
    return {
      kind: "APIResourceList",
      apiVersion: "v1",
      groupVersion: group === "" ? "v1" : `${group}/${version}`,
      resources: defs.flatMap((d) => [
        {
          name: d.plural,
          singularName: d.kind.toLowerCase(),
          namespaced: d.namespaced,
          kind: d.kind,
          verbs: d.verbs,
          ...(d.shortNames ? { shortNames: d.shortNames } : {}),
        },
        ...d.subresources.map((s) => ({
          name: `${d.plural}/${s.name}`,
          singularName: "",
          namespaced: d.namespaced,
          kind: s.kind,
          verbs: s.verbs,
          ...(s.kind === "Scale" ? { group: "autoscaling", version: "v1" } : {}),
        })),
      ]),
    };
  }

  /** Ends open watches and exec connections (the server's close). */
  closeAll(): void {
    for (const h of [...this.#open]) h.end();
    for (const ws of this.#wss.clients) ws.terminate();
  }
}

function pickFrom(protocols: Set<string>): string | false {
  for (const p of protocols) if (p === "v5.channel.k8s.io" || p === "v4.channel.k8s.io") return p;
  return false;
}

function parseRoute(path: string): Route | undefined {
  const seg = path.split("/").filter(Boolean);
  let group: string;
  let version: string;
  let rest: string[];
  if (seg[0] === "api" && seg[1]) {
    group = "";
    version = seg[1];
    rest = seg.slice(2);
  } else if (seg[0] === "apis" && seg[1] && seg[2]) {
    group = seg[1];
    version = seg[2];
    rest = seg.slice(3);
  } else return undefined;
  let watchPath = false;
  if (rest[0] === "watch") {
    watchPath = true;
    rest = rest.slice(1);
  }
  // namespaces/<ns>/<plural>[/<name>[/<sub>]] for namespaced kinds
  if (rest[0] === "namespaces" && rest.length >= 3) {
    const def = findResource(group, version, rest[2]!);
    if (def?.namespaced) return { def, ns: rest[1]!, name: rest[3], sub: rest[4], watchPath };
    if (rest.length >= 3 && group === "" && rest[2] === "status") {
      // namespaces/<name>/status
      return { def: findResource("", "v1", "namespaces")!, name: rest[1], sub: "status", watchPath };
    }
    return undefined;
  }
  const def = rest[0] ? findResource(group, version, rest[0]) : undefined;
  if (!def) return undefined;
  // Cluster-scoped kinds by name; namespaced kinds listed across all namespaces.
  if (def.namespaced) return rest.length === 1 ? { def, watchPath } : undefined;
  return { def, name: rest[1], sub: rest[2], watchPath };
}

async function body(req: IncomingMessage, optional = false): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") {
    if (optional) return undefined;
    throw badRequest("the body of the request was empty");
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`the body of the request could not be decoded: ${(err as Error).message}`);
  }
}

function json(res: ServerResponse, code: number, obj: unknown): void {
  const text = JSON.stringify(obj);
  res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) }).end(text);
}

function demuxer(tty: boolean, write: (b: Buffer) => void): (chunk: Buffer) => void {
  if (tty) return write;
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 8) {
      const len = pending.readUInt32BE(4);
      if (pending.length < 8 + len) break;
      write(pending.subarray(8, 8 + len));
      pending = pending.subarray(8 + len);
    }
  };
}

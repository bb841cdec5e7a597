/**
 * The three patch types of `kubectl patch` / the PATCH verb
 * (https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/):
 * - application/json-patch+json: RFC 6902 (add, remove, replace, move, copy, test); a failed
 *   `test` fails the whole patch (the server answers 422);
 * - application/merge-patch+json: RFC 7386 (objects merge, null deletes, lists replace);
 * - application/strategic-merge-patch+json: like a merge patch for maps (labels, annotations)
 *   and scalars, which is what this sim needs. Not simulated: merging lists by their patch merge
 *   key (e.g. containers by name) and the `$patch`/`$retainKeys` directives; lists replace.
 */
import { ApiError, badRequest } from "./status.ts";

// biome-ignore lint/suspicious/noExplicitAny: JSON values.
type Json = any;

export function mergePatch(target: Json, patch: Json): Json {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return structuredClone(patch);
  const out: Json = target !== null && typeof target === "object" && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

interface Op {
  op: string;
  path: string;
  value?: Json;
  from?: string;
}

function pointer(path: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/")) throw badRequest(`invalid JSON pointer "${path}"`);
  return path
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

const failed = (message: string) => new ApiError(422, "Invalid", message);

function parentOf(doc: Json, path: string): [Json, string] {
  const parts = pointer(path);
  if (parts.length === 0) throw failed(`cannot operate on the document root: ${path}`);
  let cur = doc;
  for (const p of parts.slice(0, -1)) {
    if (cur === null || typeof cur !== "object" || !(p in cur)) throw failed(`doc is missing path: "${path}"`);
    cur = cur[p];
  }
  if (cur === null || typeof cur !== "object") throw failed(`doc is missing path: "${path}"`);
  return [cur, parts.at(-1)!];
}

function getAt(doc: Json, path: string): Json {
  let cur = doc;
  for (const p of pointer(path)) {
    if (cur === null || typeof cur !== "object" || !(p in cur)) throw failed(`doc is missing path: "${path}"`);
    cur = cur[p];
  }
  return cur;
}

function add(doc: Json, path: string, value: Json): void {
  const [parent, last] = parentOf(doc, path);
  if (Array.isArray(parent)) {
    const i = last === "-" ? parent.length : Number(last);
    if (!Number.isInteger(i) || i < 0 || i > parent.length) throw failed(`index out of bounds: ${path}`);
    parent.splice(i, 0, value);
  } else parent[last] = value;
}

function remove(doc: Json, path: string): Json {
  const [parent, last] = parentOf(doc, path);
  if (Array.isArray(parent)) {
    const i = Number(last);
    if (!Number.isInteger(i) || i < 0 || i >= parent.length) throw failed(`index out of bounds: ${path}`);
    return parent.splice(i, 1)[0];
  }
  if (!(last in parent)) throw failed(`unable to remove nonexistent key: ${last}: missing value`);
  const v = parent[last];
  delete parent[last];
  return v;
}

function equal(a: Json, b: Json): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** A JSON value with object keys sorted: equal documents stringify equal. */
export function canonical(v: Json): Json {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === "object")
    return Object.fromEntries(
      Object.keys(v)
        .filter((k) => v[k] !== undefined)
        .sort()
        .map((k) => [k, canonical(v[k])]),
    );
  return v;
}

export function jsonPatch(target: Json, ops: unknown): Json {
  if (!Array.isArray(ops)) throw badRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch");
  const doc = structuredClone(target);
  for (const op of ops as Op[]) {
    switch (op.op) {
      case "add":
        add(doc, op.path, structuredClone(op.value));
        break;
      case "remove":
        remove(doc, op.path);
        break;
      case "replace":
        remove(doc, op.path);
        add(doc, op.path, structuredClone(op.value));
        break;
      case "move":
        add(doc, op.path, remove(doc, op.from ?? ""));
        break;
      case "copy":
        add(doc, op.path, structuredClone(getAt(doc, op.from ?? "")));
        break;
      case "test": {
        let actual: Json;
        try {
          actual = getAt(doc, op.path);
        } catch {
          actual = undefined;
        }
        if (!equal(actual, op.value)) throw failed(`testing value ${op.path} failed: test failed`);
        break;
      }
      default:
        throw badRequest(`Unexpected kind: ${op.op}`);
    }
  }
  return doc;
}

export const sameJson = (a: Json, b: Json) => JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));

/**
 * Label and field selectors as the API server parses them:
 * https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors
 * (equality-based `=`, `==`, `!=`; set-based `in`, `notin`, `key`, `!key`; comma means AND) and
 * https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/
 * (`=`, `==`, `!=` on the fields each kind supports; pods: metadata.name, metadata.namespace,
 * status.phase, spec.nodeName, spec.restartPolicy, status.podIP).
 */

import { badRequest } from "./status.ts";
import type { KObject } from "./store.ts";

type Requirement =
  | { key: string; op: "=" | "!="; value: string }
  | { key: string; op: "in" | "notin"; values: string[] }
  | { key: string; op: "exists" | "!exists" };

export type Selector = (labels: Record<string, string> | undefined) => boolean;

/** Splits at commas that are not inside a `( … )` value set. */
function splitTop(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

const KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

export function parseLabelSelector(text: string | undefined | null): Selector {
  if (!text) return () => true;
  const reqs: Requirement[] = [];
  for (const part of splitTop(text)) {
    const set = part.match(/^(\S+?)\s+(in|notin)\s*\((.*)\)$/);
    const eq = part.match(/^(\S+?)\s*(==|=|!=)\s*(\S*)$/);
    const not = part.match(/^!\s*(\S+)$/);
    const has = part.match(/^(\S+)$/);
    if (set) {
      const values = set[3]!.split(",").map((v) => v.trim());
      reqs.push({ key: check(set[1]!), op: set[2] as "in" | "notin", values });
    } else if (eq) reqs.push({ key: check(eq[1]!), op: eq[2] === "!=" ? "!=" : "=", value: eq[3]! });
    else if (not) reqs.push({ key: check(not[1]!), op: "!exists" });
    else if (has) reqs.push({ key: check(has[1]!), op: "exists" });
    else throw badRequest(`unable to parse requirement: found '${part}', expected: in, notin, =, ==, !=, gt, lt`);
  }
  return (labels) => reqs.every((r) => matches(r, labels ?? {}));
}

function check(key: string): string {
  if (!KEY.test(key)) throw badRequest(`unable to parse requirement: invalid label key "${key}"`);
  return key;
}

function matches(r: Requirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key);
  const v = labels[r.key];
  switch (r.op) {
    case "=":
      return has && v === r.value;
    case "!=":
      return !has || v !== r.value;
    case "in":
      return has && r.values.includes(v!);
    case "notin":
      return !has || !r.values.includes(v!);
    case "exists":
      return has;
    case "!exists":
      return !has;
  }
}

/** A LabelSelector object (matchLabels + matchExpressions), as ReplicaSets and NetworkPolicies hold. */
export interface LabelSelectorObject {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: "In" | "NotIn" | "Exists" | "DoesNotExist"; values?: string[] }[];
}

/**
 * https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#resources-that-support-set-based-requirements:
 * all of matchLabels and matchExpressions must hold; an empty selector matches everything.
 */
export function selectorFromObject(sel: LabelSelectorObject | undefined): Selector {
  const reqs: Requirement[] = [];
  for (const [k, v] of Object.entries(sel?.matchLabels ?? {})) reqs.push({ key: k, op: "=", value: v });
  for (const e of sel?.matchExpressions ?? []) {
    if (e.operator === "In") reqs.push({ key: e.key, op: "in", values: e.values ?? [] });
    else if (e.operator === "NotIn") reqs.push({ key: e.key, op: "notin", values: e.values ?? [] });
    else if (e.operator === "Exists") reqs.push({ key: e.key, op: "exists" });
    else if (e.operator === "DoesNotExist") reqs.push({ key: e.key, op: "!exists" });
  }
  return (labels) => reqs.every((r) => matches(r, labels ?? {}));
}

export type FieldSelector = (obj: KObject) => boolean;

const FIELDS: Record<string, string[]> = {
  pods: [
    "metadata.name",
    "metadata.namespace",
    "status.phase",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "status.podIP",
    "status.nominatedNodeName",
  ],
  events: [
    "metadata.name",
    "metadata.namespace",
    "involvedObject.kind",
    "involvedObject.name",
    "involvedObject.namespace",
    "involvedObject.uid",
    "reason",
    "type",
  ],
};

export function parseFieldSelector(resource: string, text: string | undefined | null): FieldSelector {
  if (!text) return () => true;
  const allowed = FIELDS[resource] ?? ["metadata.name", "metadata.namespace"];
  const reqs: { path: string; neg: boolean; value: string }[] = [];
  for (const part of splitTop(text)) {
    const m = part.match(/^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/);
    if (!m) throw badRequest(`invalid selector: '${text}'; can't understand '${part}'`);
    if (!allowed.includes(m[1]!)) throw badRequest(`field label not supported: ${m[1]}`);
    reqs.push({ path: m[1]!, neg: m[2] === "!=", value: m[3]!.trim() });
  }
  return (obj) =>
    reqs.every((r) => {
      // biome-ignore lint/suspicious/noExplicitAny: walking a JSON path.
      const v = r.path.split(".").reduce<any>((o, k) => (o == null ? undefined : o[k]), obj) ?? "";
      return r.neg ? String(v) !== r.value : String(v) === r.value;
    });
}

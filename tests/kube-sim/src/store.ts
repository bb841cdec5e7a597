/**
 * The sim's "etcd": every object of every kind, one global resourceVersion counter, a bounded
 * history of changes for watches that resume from a resourceVersion, and listeners (watch
 * connections and the sim's own controllers).
 *
 * Follows https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions
 * (resourceVersion is opaque to clients, changes on every write; here a decimal counter like
 * etcd's revision) and #efficient-detection-of-changes (watch from a resourceVersion; a version
 * older than the retained history answers 410 Gone).
 */
import { randomUUID } from "node:crypto";

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects are open JSON documents.
export type KObject = Record<string, any> & { metadata: ObjectMeta };

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  generateName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  [key: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

export interface Change {
  resource: string;
  type: EventType;
  rv: number;
  object: KObject;
  /** The object before a MODIFIED or DELETED change. */
  previous?: KObject;
}

export type Listener = (change: Change) => void;

export class Store {
  readonly #historySize: number;
  #rv = 1;
  #objects = new Map<string, Map<string, KObject>>();
  #history: Change[] = [];
  #listeners = new Set<Listener>();

  /** `historySize`: how many changes a watch can resume across (an etcd compaction window). */
  constructor(historySize = 20_000) {
    this.#historySize = historySize;
  }

  get resourceVersion(): string {
    return String(this.#rv);
  }

  /** The oldest resourceVersion a watch can resume from (exclusive). */
  get oldestResumable(): number {
    return this.#history.length === 0 ? this.#rv : this.#history[0]!.rv - 1;
  }

  #bucket(resource: string): Map<string, KObject> {
    let b = this.#objects.get(resource);
    if (!b) {
      b = new Map();
      this.#objects.set(resource, b);
    }
    return b;
  }

  get(resource: string, namespace: string | undefined, name: string): KObject | undefined {
    const o = this.#bucket(resource).get(key(namespace, name));
    return o === undefined ? undefined : structuredClone(o);
  }

  has(resource: string, namespace: string | undefined, name: string): boolean {
    return this.#bucket(resource).has(key(namespace, name));
  }

  list(resource: string, namespace?: string): KObject[] {
    const out: KObject[] = [];
    for (const o of this.#bucket(resource).values()) {
      if (namespace === undefined || o.metadata.namespace === namespace) out.push(structuredClone(o));
    }
    return out.sort((a, b) =>
      `${a.metadata.namespace ?? ""}/${a.metadata.name}`.localeCompare(
        `${b.metadata.namespace ?? ""}/${b.metadata.name}`,
      ),
    );
  }

  /** Stores a new object (uid, creationTimestamp, resourceVersion assigned) and returns it. */
  create(resource: string, obj: KObject): KObject {
    const stored = structuredClone(obj);
    stored.metadata.uid = randomUUID();
    stored.metadata.creationTimestamp = now();
    stored.metadata.resourceVersion = String(++this.#rv);
    this.#bucket(resource).set(key(stored.metadata.namespace, stored.metadata.name), stored);
    this.#emit({ resource, type: "ADDED", rv: this.#rv, object: stored });
    return structuredClone(stored);
  }

  /** Replaces an existing object (a new resourceVersion) and returns it. */
  update(resource: string, obj: KObject): KObject {
    const k = key(obj.metadata.namespace, obj.metadata.name);
    const previous = this.#bucket(resource).get(k);
    if (!previous) throw new Error(`update of a missing ${resource} ${k}`);
    const stored = structuredClone(obj);
    stored.metadata.resourceVersion = String(++this.#rv);
    this.#bucket(resource).set(k, stored);
    this.#emit({ resource, type: "MODIFIED", rv: this.#rv, object: stored, previous });
    return structuredClone(stored);
  }

  /** Removes an object; the DELETED event carries it with a new resourceVersion. */
  remove(resource: string, namespace: string | undefined, name: string): KObject | undefined {
    const k = key(namespace, name);
    const previous = this.#bucket(resource).get(k);
    if (!previous) return undefined;
    this.#bucket(resource).delete(k);
    const gone = structuredClone(previous);
    gone.metadata.resourceVersion = String(++this.#rv);
    this.#emit({ resource, type: "DELETED", rv: this.#rv, object: gone, previous });
    return structuredClone(gone);
  }

  /** Changes after `rv` (exclusive), or undefined when they are no longer retained. */
  since(rv: number): Change[] | undefined {
    if (rv < this.oldestResumable) return undefined;
    return this.#history.filter((c) => c.rv > rv);
  }

  listen(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(change: Change): void {
    this.#history.push(change);
    if (this.#history.length > this.#historySize) this.#history.splice(0, this.#history.length - this.#historySize);
    for (const l of [...this.#listeners]) {
      try {
        l(change);
      } catch {
        // a listener's failure is its own
      }
    }
  }
}

function key(namespace: string | undefined, name: string): string {
  return `${namespace ?? ""}/${name}`;
}

export function now(): string {
  // Kubernetes serializes metav1.Time at second precision (RFC 3339).
  return `${new Date().toISOString().slice(0, 19)}Z`;
}

// Loaded with `node --import` before every TS/JS sample: each sandbox a sample makes through
// `@kiln/core` (directly, through an adapter, in-process or through a server) carries the labels
// KILN_DOCS_LABELS names, so the runner finds what a sample left behind and removes it. The
// runner calls `installLabels` in its own process too, for the sandboxes its server makes.
import { type CreateSandboxOptions, Kiln } from "@kiln/core";

export function installLabels(labels: Record<string, string>): void {
  if (Object.keys(labels).length === 0) return;
  const withLabels = <T extends { labels?: Record<string, string> }>(options: T | undefined): T =>
    ({ ...options, labels: { ...options?.labels, ...labels } }) as T;
  const create = Kiln.prototype.create;
  Kiln.prototype.create = function (this: Kiln, options?: CreateSandboxOptions) {
    return create.call(this, withLabels(options));
  };
  const getOrCreate = Kiln.prototype.getOrCreate;
  Kiln.prototype.getOrCreate = function (this: Kiln, name: string, options?: Omit<CreateSandboxOptions, "name">) {
    return getOrCreate.call(this, name, withLabels(options));
  };
}

installLabels(JSON.parse(process.env.KILN_DOCS_LABELS ?? "{}") as Record<string, string>);

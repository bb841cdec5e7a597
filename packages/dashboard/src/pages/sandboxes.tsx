/** The sandboxes: a live list (polled), a label filter, the create dialog, start/stop/delete. */
import { useState } from "preact/hooks";
import { api, can, type SandboxInfo } from "../api.ts";
import { labelQuery, networkText, parseDuration, parseLabels } from "../format.ts";
import { DeleteButton, ResourceTable } from "../resource.tsx";
import { navigate } from "../router.ts";
import { ConfirmButton, Dialog, ErrorBox, useData, when } from "../ui.tsx";

/** How often the list refreshes (state changes show without a reload). */
const POLL_MS = 3_000;

export function SandboxesPage() {
  const [filter, setFilter] = useState(new URLSearchParams(location.search).get("label") ?? "");
  const [creating, setCreating] = useState(false);
  const labels = labelQuery(filter);
  const list = useData(
    (signal) => api<{ sandboxes: SandboxInfo[] }>("/v1/sandboxes", { query: { label: labels }, signal }),
    [labels.join("&")],
    POLL_MS,
  );
  return (
    <section>
      <div class="page-head">
        <h1>Sandboxes</h1>
        <button type="button" class="primary" disabled={!can("sandboxes:write")} onClick={() => setCreating(true)}>
          New sandbox
        </button>
      </div>
      <div class="toolbar">
        <label for="label-filter">Filter by label</label>
        <input
          id="label-filter"
          type="search"
          placeholder="team=ml env=dev"
          value={filter}
          onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
        />
      </div>
      <ErrorBox error={list.error} retry={list.reload} />
      <ResourceTable
        list={{ ...list, items: list.data?.sandboxes ?? [] }}
        empty={
          <>
            {labels.length > 0 ? "No sandbox has these labels." : "No sandboxes yet."}{" "}
            {can("sandboxes:write") ? (
              <button type="button" class="link" onClick={() => setCreating(true)}>
                Create one
              </button>
            ) : null}
          </>
        }
        label="Sandboxes"
        columns={[
          "Name",
          "State",
          "Language",
          { title: "Resources", narrow: true },
          { title: "Network", narrow: true },
          "Labels",
          { title: "Created", narrow: true },
        ]}
        row={(s) => <SandboxRow key={s.id} sandbox={s} changed={list.reload} />}
      />
      <CreateDialog
        open={creating}
        onClose={() => setCreating(false)}
        onCreated={(s) => {
          setCreating(false);
          list.reload();
          navigate(`/sandboxes/${encodeURIComponent(s.id)}`);
        }}
      />
    </section>
  );
}

function SandboxRow({ sandbox: s, changed }: { sandbox: SandboxInfo; changed: () => void }) {
  const id = encodeURIComponent(s.id);
  const writable = can("sandboxes:write");
  return (
    <tr data-id={s.id}>
      <td>
        <a href={`/sandboxes/${id}`}>{s.name ?? s.id}</a>
        {s.name ? (
          <div class="muted small mono" title={s.id}>
            {s.id.slice(0, 12)}
          </div>
        ) : null}
      </td>
      <td>
        <span class={`state state-${s.state}`}>{s.state}</span>
      </td>
      <td>{s.language}</td>
      <td class="hide-narrow">
        {s.resources.cpus} CPU · {s.resources.memoryMb} MB
      </td>
      <td class="hide-narrow">{networkText(s.network)}</td>
      <td>
        <Labels labels={s.labels} />
      </td>
      <td class="hide-narrow">{when(s.createdAt)}</td>
      <td class="row-actions">
        {s.state === "running" ? (
          <ConfirmButton
            label="Stop"
            question={`Stop sandbox ${s.name ?? s.id}? Its processes end; its files stay.`}
            disabled={!writable}
            action={() => api(`/v1/sandboxes/${id}/stop`, { method: "POST" }).then(changed)}
          />
        ) : (
          <button
            type="button"
            disabled={!writable}
            onClick={() => api(`/v1/sandboxes/${id}/start`, { method: "POST" }).then(changed, changed)}
          >
            Start
          </button>
        )}
        <DeleteButton
          path={`/v1/sandboxes/${id}`}
          scope="sandboxes:write"
          question={`Delete sandbox ${s.name ?? s.id} and everything in it? This cannot be undone.`}
          done={changed}
        />
      </td>
    </tr>
  );
}

export function Labels({ labels }: { labels: Record<string, string> }) {
  const entries = Object.entries(labels).filter(([k]) => k !== "test-run");
  if (entries.length === 0) return <span class="muted">—</span>;
  return (
    <ul class="labels">
      {entries.map(([k, v]) => (
        <li key={k} class="label" title={`${k}=${v}`}>
          {k}={v}
        </li>
      ))}
    </ul>
  );
}

function CreateDialog({
  open,
  onClose,
  onCreated,
}: {
  open: boolean;
  onClose: () => void;
  onCreated: (s: SandboxInfo) => void;
}) {
  return (
    <Dialog title="New sandbox" open={open} onClose={onClose}>
      <CreateForm onCreated={onCreated} onCancel={onClose} />
    </Dialog>
  );
}

function CreateForm({ onCreated, onCancel }: { onCreated: (s: SandboxInfo) => void; onCancel: () => void }) {
  const [source, setSource] = useState<"image" | "snapshot">("image");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const snapshots = useData(
    (signal) => api<{ snapshots: { name: string }[] }>("/v1/snapshots", { signal }).catch(() => ({ snapshots: [] })),
    [],
  );
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    const text = (k: string) => String(f.get(k) ?? "").trim();
    const body: Record<string, unknown> = {};
    if (text("name")) body.name = text("name");
    if (source === "image" && text("image")) body.image = text("image");
    if (source === "snapshot" && text("snapshot")) body.snapshot = text("snapshot");
    body.language = text("language") || "python";
    const resources: Record<string, number> = {};
    if (text("cpus")) resources.cpus = Number(text("cpus"));
    if (text("memoryMb")) resources.memoryMb = Number(text("memoryMb"));
    if (Object.keys(resources).length > 0) body.resources = resources;
    const network = text("network");
    if (network === "allow") {
      body.network = {
        allow: text("allow")
          .split(/[\s,]+/)
          .filter(Boolean),
      };
    } else if (network) body.network = network;
    const labels = parseLabels(text("labels"));
    if (Object.keys(labels).length > 0) body.labels = labels;
    if (text("autoStop")) {
      const ms = parseDuration(text("autoStop"));
      if (ms === undefined) {
        setError(new Error("Auto-stop: a duration like 30m, 2h or 90s"));
        return;
      }
      body.autoStopMs = ms;
    }
    setBusy(true);
    setError(undefined);
    try {
      onCreated(await api<SandboxInfo>("/v1/sandboxes", { method: "POST", body }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const [network, setNetwork] = useState("none");
  return (
    <form class="form" onSubmit={submit}>
      <label>
        <span>
          Name <span class="muted">(optional)</span>
        </span>
        <input name="name" pattern="[a-zA-Z0-9][a-zA-Z0-9_.\-]{0,62}" placeholder="dev" />
      </label>
      <fieldset>
        <legend>Start from</legend>
        <label class="inline">
          <input type="radio" name="source" checked={source === "image"} onChange={() => setSource("image")} /> Image
        </label>
        <label class="inline">
          <input type="radio" name="source" checked={source === "snapshot"} onChange={() => setSource("snapshot")} />{" "}
          Snapshot
        </label>
        {source === "image" ? (
          <label>
            <span>
              Image <span class="muted">(empty: the runtime image)</span>
            </span>
            <input name="image" placeholder="kiln-runtime" />
          </label>
        ) : (
          <label>
            Snapshot
            <select name="snapshot" required>
              {(snapshots.data?.snapshots ?? []).map((s) => (
                <option key={s.name} value={s.name}>
                  {s.name}
                </option>
              ))}
            </select>
            {snapshots.data?.snapshots.length === 0 ? <span class="muted small">No snapshots yet.</span> : null}
          </label>
        )}
      </fieldset>
      <div class="grid2">
        <label>
          Language
          <select name="language">
            <option value="python">Python</option>
            <option value="javascript">JavaScript</option>
            <option value="typescript">TypeScript</option>
          </select>
        </label>
        <label>
          Network
          <select name="network" value={network} onChange={(e) => setNetwork((e.target as HTMLSelectElement).value)}>
            <option value="none">none</option>
            <option value="egress">egress</option>
            <option value="allow">allow-list</option>
          </select>
        </label>
        <label>
          CPUs
          <input name="cpus" type="number" min="0.1" step="0.1" placeholder="1" />
        </label>
        <label>
          Memory (MB)
          <input name="memoryMb" type="number" min="16" step="1" placeholder="512" />
        </label>
      </div>
      {network === "allow" ? (
        <label>
          Allowed hosts
          <input name="allow" placeholder="pypi.org, *.github.com" />
        </label>
      ) : null}
      <label>
        <span>
          Labels <span class="muted">(k=v, comma separated)</span>
        </span>
        <input name="labels" placeholder="team=ml, env=dev" />
      </label>
      <label>
        <span>
          Auto-stop after idle <span class="muted">(e.g. 30m; empty: never)</span>
        </span>
        <input name="autoStop" placeholder="30m" />
      </label>
      <ErrorBox error={error} />
      <div class="actions">
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Creating…" : "Create"}
        </button>
      </div>
    </form>
  );
}

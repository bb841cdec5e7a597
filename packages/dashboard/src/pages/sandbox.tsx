/** One sandbox: its facts and actions, and tabs for the terminal, files, code, processes, previews, snapshots. */
import { api, can, type SandboxInfo } from "../api.ts";
import { networkText } from "../format.ts";
import { navigate } from "../router.ts";
import { ConfirmButton, ErrorBox, Loading, useData, when } from "../ui.tsx";
import { CodeCell } from "./cell.tsx";
import { FileBrowser } from "./files.tsx";
import { PreviewsPanel, SnapshotPanel } from "./previews.tsx";
import { ProcessesPanel } from "./processes.tsx";
import { Labels } from "./sandboxes.tsx";
import { Terminal } from "./terminal.tsx";

const TABS = [
  ["terminal", "Terminal"],
  ["files", "Files"],
  ["code", "Code"],
  ["processes", "Processes"],
  ["previews", "Previews"],
  ["snapshots", "Snapshots"],
] as const;

export function SandboxPage({ id, tab }: { id: string; tab: string }) {
  const info = useData(
    (signal) => api<SandboxInfo>(`/v1/sandboxes/${encodeURIComponent(id)}`, { signal }),
    [id],
    5_000,
  );
  const s = info.data;
  const base = `/sandboxes/${encodeURIComponent(id)}`;
  if (!s) {
    return (
      <section>
        <p>
          <a href="/sandboxes">← Sandboxes</a>
        </p>
        {info.error ? <ErrorBox error={info.error} retry={info.reload} /> : <Loading what="Loading sandbox" />}
      </section>
    );
  }
  const sid = encodeURIComponent(s.id);
  const running = s.state === "running";
  return (
    <section class="sandbox">
      <p class="crumbs">
        <a href="/sandboxes">← Sandboxes</a>
      </p>
      <div class="page-head">
        <h1>
          {s.name ?? s.id} <span class={`state state-${s.state}`}>{s.state}</span>
        </h1>
        <div class="row-actions">
          {running ? (
            <ConfirmButton
              label="Stop"
              question="Stop this sandbox? Its processes and terminals end; its files stay."
              disabled={!can("sandboxes:write")}
              action={() => api(`/v1/sandboxes/${sid}/stop`, { method: "POST" }).then(info.reload)}
            />
          ) : (
            <button
              type="button"
              disabled={!can("sandboxes:write")}
              onClick={() => api(`/v1/sandboxes/${sid}/start`, { method: "POST" }).then(info.reload, info.reload)}
            >
              Start
            </button>
          )}
          <ConfirmButton
            label="Delete"
            danger
            disabled={!can("sandboxes:write")}
            question="Delete this sandbox and everything in it? This cannot be undone."
            action={() => api(`/v1/sandboxes/${sid}`, { method: "DELETE" }).then(() => navigate("/sandboxes"))}
          />
        </div>
      </div>
      <dl class="facts">
        <div>
          <dt>Id</dt>
          <dd class="mono" title={s.id}>
            {s.id.slice(0, 12)}
          </dd>
        </div>
        <div>
          <dt>Image</dt>
          <dd class="mono">{s.image}</dd>
        </div>
        <div>
          <dt>Language</dt>
          <dd>{s.language}</dd>
        </div>
        <div>
          <dt>Resources</dt>
          <dd>
            {s.resources.cpus} CPU · {s.resources.memoryMb} MB
          </dd>
        </div>
        <div>
          <dt>Network</dt>
          <dd>{networkText(s.network)}</dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>{when(s.createdAt)}</dd>
        </div>
        <div>
          <dt>Labels</dt>
          <dd>
            <Labels labels={s.labels} />
          </dd>
        </div>
      </dl>
      <nav class="tabs" aria-label="Sandbox">
        {TABS.map(([key, label]) => (
          <a key={key} href={`${base}/${key}`} aria-current={tab === key ? "page" : undefined}>
            {label}
          </a>
        ))}
      </nav>
      {!running ? (
        <div class="empty">This sandbox is {s.state}. Start it to use its terminal, files and code.</div>
      ) : tab === "terminal" ? (
        <Terminal sandboxId={s.id} />
      ) : tab === "files" ? (
        <FileBrowser sandboxId={s.id} />
      ) : tab === "code" ? (
        <CodeCell sandboxId={s.id} language={s.language} />
      ) : tab === "processes" ? (
        <ProcessesPanel sandboxId={s.id} />
      ) : tab === "previews" ? (
        <PreviewsPanel sandboxId={s.id} />
      ) : tab === "snapshots" ? (
        <SnapshotPanel sandboxId={s.id} />
      ) : (
        <p>No such tab.</p>
      )}
    </section>
  );
}

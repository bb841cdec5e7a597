/** Preview links for a sandbox's ports, and snapshots of the sandbox. */
import { useState } from "preact/hooks";
import { api, can } from "../api.ts";
import { useAction } from "../resource.tsx";
import { ErrorBox, when } from "../ui.tsx";

interface Preview {
  url: string;
  token: string;
  expiresAt: string;
}

export function PreviewsPanel({ sandboxId }: { sandboxId: string }) {
  const [previews, setPreviews] = useState<(Preview & { port: number })[]>([]);
  const get = useAction();
  return (
    <div>
      <form
        class="toolbar"
        onSubmit={get.submit(async (_form, f) => {
          const port = Number(f.get("port"));
          const minutes = Number(f.get("minutes") || 60);
          const p = await api<Preview>(`/v1/sandboxes/${encodeURIComponent(sandboxId)}/ports/${port}/preview`, {
            method: "POST",
            body: { expiresInMs: Math.round(minutes * 60_000) },
          });
          setPreviews((list) => [{ ...p, port }, ...list]);
        })}
      >
        <label for="preview-port">Port</label>
        <input id="preview-port" name="port" type="number" min="1" max="65535" required placeholder="8000" />
        <label for="preview-minutes">Valid for (minutes)</label>
        <input id="preview-minutes" name="minutes" type="number" min="1" placeholder="60" />
        <button type="submit" class="primary" disabled={!can("sandboxes:exec")}>
          Get link
        </button>
      </form>
      <p class="muted small">
        A preview link opens a port of the sandbox in the browser (start a server in Processes first). Anyone with the
        link can open it until it expires.
      </p>
      <ErrorBox error={get.error} />
      <ul class="plain">
        {previews.map((p) => (
          <li key={p.url}>
            Port {p.port}:{" "}
            <a href={p.url} target="_blank" rel="noopener noreferrer">
              {p.url}
            </a>{" "}
            <span class="muted small">until {when(p.expiresAt)}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}

export function SnapshotPanel({ sandboxId }: { sandboxId: string }) {
  const [made, setMade] = useState<string[]>([]);
  const take = useAction();
  return (
    <div>
      <form
        class="toolbar"
        onSubmit={take.submit(async (form, f) => {
          const name = String(f.get("name") ?? "").trim();
          if (!name) return;
          await api(`/v1/sandboxes/${encodeURIComponent(sandboxId)}/snapshots`, { method: "POST", body: { name } });
          setMade((m) => [name, ...m]);
          form.reset();
        })}
      >
        <label for="snapshot-name">Snapshot name</label>
        <input id="snapshot-name" name="name" required pattern="[a-zA-Z0-9][a-zA-Z0-9_.\-]{0,62}" placeholder="base" />
        <button type="submit" class="primary" disabled={take.busy || !can("snapshots:write")}>
          {take.busy ? "Snapshotting…" : "Take snapshot"}
        </button>
      </form>
      <p class="muted small">
        A snapshot keeps this sandbox's files and installed packages; new sandboxes can start from it. All snapshots are
        on the <a href="/snapshots">Snapshots</a> page.
      </p>
      <ErrorBox error={take.error} />
      {made.length > 0 ? <p role="status">Made: {made.join(", ")}</p> : null}
    </div>
  );
}

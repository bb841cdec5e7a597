/** Background processes of a sandbox: start one, see them, read or follow their logs, signal them. */
import { useEffect, useState } from "preact/hooks";
import { api, can, stream } from "../api.ts";
import { ResourceTable, useAction, useResource } from "../resource.tsx";
import { ErrorBox } from "../ui.tsx";

interface Proc {
  pid: number;
  tag?: string;
  command: string;
  running: boolean;
  exitCode?: number;
}

export function ProcessesPanel({ sandboxId }: { sandboxId: string }) {
  const path = `/v1/sandboxes/${encodeURIComponent(sandboxId)}/processes`;
  const list = useResource<Proc>(path, "processes", 3000);
  const [selected, setSelected] = useState<number | undefined>(undefined);
  const action = useAction();
  return (
    <div class="processes">
      <form
        class="toolbar"
        onSubmit={action.submit(async (form, f) => {
          const command = String(f.get("command") ?? "").trim();
          const tag = String(f.get("tag") ?? "").trim();
          if (!command) return;
          const started = await api<{ pid: number }>(path, {
            method: "POST",
            body: { command, ...(tag ? { tag } : {}) },
          });
          form.reset();
          setSelected(started.pid);
          list.reload();
        })}
      >
        <label for="proc-command">Command</label>
        <input id="proc-command" name="command" placeholder="python3 -m http.server 8000" class="grow" />
        <label for="proc-tag" class="sr-only">
          Tag
        </label>
        <input id="proc-tag" name="tag" placeholder="tag (optional)" />
        <button type="submit" class="primary" disabled={!can("sandboxes:exec")}>
          Start
        </button>
      </form>
      <ErrorBox error={action.error ?? list.error} />
      <ResourceTable
        list={list}
        empty="No background processes. Start one above (a server, a watcher, a long job)."
        label="Processes"
        columns={["PID", "Command", "State"]}
        row={(p) => (
          <tr key={p.pid}>
            <td>{p.pid}</td>
            <td class="mono">
              {p.tag ? <span class="label">{p.tag}</span> : null} {p.command}
            </td>
            <td>{p.running ? "running" : `exited ${p.exitCode ?? ""}`}</td>
            <td class="row-actions">
              <button type="button" onClick={() => setSelected(p.pid)}>
                Logs
              </button>
              {p.running ? (
                <button
                  type="button"
                  disabled={!can("sandboxes:exec")}
                  onClick={() =>
                    api(`${path}/${p.pid}/signal`, {
                      method: "POST",
                      body: { signal: "SIGTERM" },
                    }).then(list.reload, action.setError)
                  }
                >
                  Stop
                </button>
              ) : null}
            </td>
          </tr>
        )}
      />
      {selected !== undefined ? <Logs sandboxId={sandboxId} pid={selected} /> : null}
    </div>
  );
}

function Logs({ sandboxId, pid }: { sandboxId: string; pid: number }) {
  const [out, setOut] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  const [following, setFollowing] = useState(true);
  useEffect(() => {
    const ac = new AbortController();
    setOut("");
    setError(undefined);
    setFollowing(true);
    const path = `/v1/sandboxes/${encodeURIComponent(sandboxId)}/processes/${pid}/logs`;
    stream(path, { query: { follow: "true" }, signal: ac.signal }, (event) => {
      if (event.type === "stdout" || event.type === "stderr") setOut((s) => s + String(event.data));
    })
      .catch((err) => {
        if (!ac.signal.aborted) setError(err);
      })
      .finally(() => {
        if (!ac.signal.aborted) setFollowing(false);
      });
    return () => ac.abort();
  }, [sandboxId, pid]);
  return (
    <section class="logs" aria-label={`Logs of process ${pid}`}>
      <h3>
        Logs of {pid} {following ? <span class="muted small">(following)</span> : null}
      </h3>
      <ErrorBox error={error} />
      <pre class="out">{out || "(no output yet)"}</pre>
    </section>
  );
}

/** Snapshots and volumes of the organisation. */
import { useState } from "preact/hooks";
import { api, can } from "../api.ts";
import { bytes } from "../format.ts";
import { ConfirmButton, Empty, ErrorBox, Loading, useData, when } from "../ui.tsx";

interface Snapshot {
  name: string;
  createdAt: string;
  sizeBytes: number;
  sourceSandboxId?: string;
}
interface Volume {
  name: string;
  createdAt: string;
  labels: Record<string, string>;
}

export function SnapshotsPage() {
  const list = useData((signal) => api<{ snapshots: Snapshot[] }>("/v1/snapshots", { signal }), [], 10_000);
  const snapshots = list.data?.snapshots ?? [];
  return (
    <section>
      <div class="page-head">
        <h1>Snapshots</h1>
      </div>
      <p class="muted">
        Take a snapshot from a sandbox's Snapshots tab; start new sandboxes from it in the create dialog.
      </p>
      <ErrorBox error={list.error} retry={list.reload} />
      {list.data === undefined && list.loading ? (
        <Loading what="Loading snapshots" />
      ) : snapshots.length === 0 ? (
        <Empty>No snapshots yet.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="list" aria-label="Snapshots">
            <thead>
              <tr>
                <th>Name</th>
                <th>Size</th>
                <th class="hide-narrow">From</th>
                <th>Created</th>
                <th>
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {snapshots.map((s) => (
                <tr key={s.name}>
                  <td>{s.name}</td>
                  <td>{bytes(s.sizeBytes)}</td>
                  <td class="hide-narrow mono">{s.sourceSandboxId ?? "—"}</td>
                  <td>{when(s.createdAt)}</td>
                  <td class="row-actions">
                    <ConfirmButton
                      label="Delete"
                      danger
                      disabled={!can("snapshots:write")}
                      question={`Delete snapshot ${s.name}? Sandboxes made from it keep running.`}
                      action={() =>
                        api(`/v1/snapshots/${encodeURIComponent(s.name)}`, { method: "DELETE" }).then(list.reload)
                      }
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function VolumesPage() {
  const list = useData((signal) => api<{ volumes: Volume[] }>("/v1/volumes", { signal }), [], 10_000);
  const [error, setError] = useState<unknown>(undefined);
  const volumes = list.data?.volumes ?? [];
  return (
    <section>
      <div class="page-head">
        <h1>Volumes</h1>
      </div>
      <form
        class="toolbar"
        onSubmit={async (e) => {
          e.preventDefault();
          const form = e.target as HTMLFormElement;
          const name = String(new FormData(form).get("name") ?? "").trim();
          setError(undefined);
          try {
            await api("/v1/volumes", { method: "POST", body: { name } });
            form.reset();
            list.reload();
          } catch (err) {
            setError(err);
          }
        }}
      >
        <label for="volume-name">New volume</label>
        <input id="volume-name" name="name" required pattern="[a-zA-Z0-9][a-zA-Z0-9_.\-]{0,50}" placeholder="data" />
        <button type="submit" class="primary" disabled={!can("volumes:write")}>
          Create
        </button>
      </form>
      <ErrorBox error={error ?? list.error} />
      {list.data === undefined && list.loading ? (
        <Loading what="Loading volumes" />
      ) : volumes.length === 0 ? (
        <Empty>No volumes yet. A volume keeps files across sandboxes.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="list" aria-label="Volumes">
            <thead>
              <tr>
                <th>Name</th>
                <th>Created</th>
                <th>
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {volumes.map((v) => (
                <tr key={v.name}>
                  <td>{v.name}</td>
                  <td>{when(v.createdAt)}</td>
                  <td class="row-actions">
                    <ConfirmButton
                      label="Delete"
                      danger
                      disabled={!can("volumes:write")}
                      question={`Delete volume ${v.name} and its files?`}
                      action={() =>
                        api(`/v1/volumes/${encodeURIComponent(v.name)}`, { method: "DELETE" }).then(list.reload)
                      }
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

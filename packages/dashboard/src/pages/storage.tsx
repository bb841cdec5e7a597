/** Snapshots and volumes of the organisation. */
import { api, can } from "../api.ts";
import { bytes } from "../format.ts";
import { DeleteButton, ResourceTable, useAction, useResource } from "../resource.tsx";
import { ErrorBox, when } from "../ui.tsx";

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
  const list = useResource<Snapshot>("/v1/snapshots", "snapshots", 10_000);
  return (
    <section>
      <div class="page-head">
        <h1>Snapshots</h1>
      </div>
      <p class="muted">
        Take a snapshot from a sandbox's Snapshots tab; start new sandboxes from it in the create dialog.
      </p>
      <ErrorBox error={list.error} retry={list.reload} />
      <ResourceTable
        list={list}
        empty="No snapshots yet."
        label="Snapshots"
        columns={["Name", "Size", { title: "From", narrow: true }, "Created"]}
        row={(s) => (
          <tr key={s.name}>
            <td>{s.name}</td>
            <td>{bytes(s.sizeBytes)}</td>
            <td class="hide-narrow mono">{s.sourceSandboxId ?? "—"}</td>
            <td>{when(s.createdAt)}</td>
            <td class="row-actions">
              <DeleteButton
                path={`/v1/snapshots/${encodeURIComponent(s.name)}`}
                scope="snapshots:write"
                question={`Delete snapshot ${s.name}? Sandboxes made from it keep running.`}
                done={list.reload}
              />
            </td>
          </tr>
        )}
      />
    </section>
  );
}

export function VolumesPage() {
  const list = useResource<Volume>("/v1/volumes", "volumes", 10_000);
  const create = useAction();
  return (
    <section>
      <div class="page-head">
        <h1>Volumes</h1>
      </div>
      <form
        class="toolbar"
        onSubmit={create.submit(async (form, data) => {
          await api("/v1/volumes", { method: "POST", body: { name: String(data.get("name") ?? "").trim() } });
          form.reset();
          list.reload();
        })}
      >
        <label for="volume-name">New volume</label>
        <input id="volume-name" name="name" required pattern="[a-zA-Z0-9][a-zA-Z0-9_.\-]{0,62}" placeholder="data" />
        <button type="submit" class="primary" disabled={!can("volumes:write")}>
          Create
        </button>
      </form>
      <ErrorBox error={create.error ?? list.error} />
      <ResourceTable
        list={list}
        empty="No volumes yet. A volume keeps files across sandboxes."
        label="Volumes"
        columns={["Name", "Created"]}
        row={(v) => (
          <tr key={v.name}>
            <td>{v.name}</td>
            <td>{when(v.createdAt)}</td>
            <td class="row-actions">
              <DeleteButton
                path={`/v1/volumes/${encodeURIComponent(v.name)}`}
                scope="volumes:write"
                question={`Delete volume ${v.name} and its files?`}
                done={list.reload}
              />
            </td>
          </tr>
        )}
      />
    </section>
  );
}

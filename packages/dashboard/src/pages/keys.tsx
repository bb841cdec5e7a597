/** API keys: list, create (the key is shown once), revoke. */
import { useState } from "preact/hooks";
import { api, can, me } from "../api.ts";
import { ConfirmButton, Dialog, Empty, ErrorBox, Loading, useData, when } from "../ui.tsx";

const SCOPES = [
  "sandboxes:read",
  "sandboxes:write",
  "sandboxes:exec",
  "files:read",
  "files:write",
  "snapshots:write",
  "volumes:write",
  "keys:write",
  "webhooks:write",
  "audit:read",
  "orgs:admin",
  "*",
];

interface Key {
  id: string;
  name: string;
  orgId: string;
  prefix: string;
  scopes: string[];
  sandboxId?: string;
  expiresAt?: string;
  createdAt: string;
  revokedAt?: string;
  lastUsedAt?: string;
}

export function KeysPage() {
  const list = useData((signal) => api<{ keys: Key[] }>("/v1/keys", { signal }), []);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<(Key & { key: string }) | undefined>(undefined);
  const keys = list.data?.keys ?? [];
  return (
    <section>
      <div class="page-head">
        <h1>API keys</h1>
        <button type="button" class="primary" disabled={!can("keys:write")} onClick={() => setCreating(true)}>
          New key
        </button>
      </div>
      {created ? (
        <div class="notice" role="status">
          <p>
            Key <strong>{created.name}</strong> made. Copy it now: it is shown only this once.
          </p>
          <div class="copy-row">
            <input readOnly value={created.key} aria-label="The new key" class="mono grow" data-testid="new-key" />
            <button type="button" onClick={() => void navigator.clipboard?.writeText(created.key)}>
              Copy
            </button>
            <button type="button" onClick={() => setCreated(undefined)}>
              Done
            </button>
          </div>
        </div>
      ) : null}
      <ErrorBox error={list.error} retry={list.reload} />
      {list.data === undefined && list.loading ? (
        <Loading what="Loading keys" />
      ) : keys.length === 0 ? (
        <Empty>No keys.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="list" aria-label="API keys">
            <thead>
              <tr>
                <th>Name</th>
                <th>Key</th>
                <th>Scopes</th>
                <th class="hide-narrow">Last used</th>
                <th class="hide-narrow">Created</th>
                <th>
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr key={k.id} data-key={k.id} class={k.revokedAt ? "revoked" : ""}>
                  <td>
                    {k.name}
                    {k.id === me.value?.key.id ? <span class="label">this session</span> : null}
                  </td>
                  <td class="mono">{k.prefix}…</td>
                  <td>
                    <ul class="labels">
                      {k.scopes.map((s) => (
                        <li key={s} class="label">
                          {s}
                        </li>
                      ))}
                    </ul>
                    {k.sandboxId ? <div class="small muted">only {k.sandboxId}</div> : null}
                  </td>
                  <td class="hide-narrow">{k.lastUsedAt ? when(k.lastUsedAt) : "never"}</td>
                  <td class="hide-narrow">{when(k.createdAt)}</td>
                  <td class="row-actions">
                    {k.revokedAt ? (
                      <span class="muted">revoked {when(k.revokedAt)}</span>
                    ) : (
                      <ConfirmButton
                        label="Revoke"
                        danger
                        disabled={!can("keys:write")}
                        question={`Revoke key ${k.name} (${k.prefix}…)? Every client using it stops working at once${k.id === me.value?.key.id ? ", including this session" : ""}.`}
                        action={() =>
                          api(`/v1/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" }).then(list.reload)
                        }
                      />
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Dialog title="New API key" open={creating} onClose={() => setCreating(false)}>
        <NewKeyForm
          onCancel={() => setCreating(false)}
          onCreated={(k) => {
            setCreating(false);
            setCreated(k);
            list.reload();
          }}
        />
      </Dialog>
    </section>
  );
}

function NewKeyForm({ onCreated, onCancel }: { onCreated: (k: Key & { key: string }) => void; onCancel: () => void }) {
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  return (
    <form
      class="form"
      onSubmit={async (e) => {
        e.preventDefault();
        const f = new FormData(e.target as HTMLFormElement);
        const scopes = f.getAll("scopes").map(String);
        const sandboxId = String(f.get("sandboxId") ?? "").trim();
        const days = Number(f.get("days") || 0);
        setBusy(true);
        setError(undefined);
        try {
          onCreated(
            await api<Key & { key: string }>("/v1/keys", {
              method: "POST",
              body: {
                name: String(f.get("name") ?? "").trim(),
                scopes,
                ...(sandboxId ? { sandboxId } : {}),
                ...(days > 0 ? { expiresAt: new Date(Date.now() + days * 86_400_000).toISOString() } : {}),
              },
            }),
          );
        } catch (err) {
          setError(err);
        } finally {
          setBusy(false);
        }
      }}
    >
      <label>
        Name
        <input name="name" required maxLength={128} placeholder="ci" />
      </label>
      <fieldset>
        <legend>Scopes</legend>
        <div class="checks">
          {SCOPES.map((s) => (
            <label key={s} class="inline">
              <input type="checkbox" name="scopes" value={s} defaultChecked={s === "sandboxes:read"} /> {s}
            </label>
          ))}
        </div>
      </fieldset>
      <label>
        <span>
          Only this sandbox <span class="muted">(optional id)</span>
        </span>
        <input name="sandboxId" />
      </label>
      <label>
        <span>
          Expires after (days) <span class="muted">(empty: never)</span>
        </span>
        <input name="days" type="number" min="1" />
      </label>
      <ErrorBox error={error} />
      <div class="actions">
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" class="primary" disabled={busy}>
          Create key
        </button>
      </div>
    </form>
  );
}

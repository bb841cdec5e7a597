/** API keys: list, create (the key is shown once), revoke. */
import { SCOPE_INFO, SCOPES } from "@kiln/core/vocabulary";
import { useState } from "preact/hooks";
import { api, can, me } from "../api.ts";
import { DeleteButton, ResourceTable, useAction, useResource } from "../resource.tsx";
import { Dialog, ErrorBox, when } from "../ui.tsx";

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
  const list = useResource<Key>("/v1/keys", "keys");
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<(Key & { key: string }) | undefined>(undefined);
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
      <ResourceTable
        list={list}
        what="Loading keys"
        empty="No keys."
        label="API keys"
        columns={["Name", "Key", "Scopes", { title: "Last used", narrow: true }, { title: "Created", narrow: true }]}
        row={(k) => (
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
                <DeleteButton
                  label="Revoke"
                  path={`/v1/keys/${encodeURIComponent(k.id)}`}
                  scope="keys:write"
                  question={`Revoke key ${k.name} (${k.prefix}…)? Every client using it stops working at once${k.id === me.value?.key.id ? ", including this session" : ""}.`}
                  done={list.reload}
                />
              )}
            </td>
          </tr>
        )}
      />
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
  const create = useAction();
  return (
    <form
      class="form"
      onSubmit={create.submit(async (_form, f) => {
        const scopes = f.getAll("scopes").map(String);
        const sandboxId = String(f.get("sandboxId") ?? "").trim();
        const days = Number(f.get("days") || 0);
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
      })}
    >
      <label>
        Name
        <input name="name" required maxLength={128} placeholder="ci" />
      </label>
      <fieldset>
        <legend>Scopes</legend>
        <div class="checks">
          {SCOPES.map((s) => (
            <label key={s} class="inline" title={SCOPE_INFO[s]}>
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
      <ErrorBox error={create.error} />
      <div class="actions">
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" class="primary" disabled={create.busy}>
          Create key
        </button>
      </div>
    </form>
  );
}

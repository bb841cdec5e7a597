/** Webhooks: create (the secret is shown once), delete, and each one's deliveries. */
import { useState } from "preact/hooks";
import { api, can } from "../api.ts";
import { ConfirmButton, Empty, ErrorBox, Loading, useData, when } from "../ui.tsx";

const EVENTS = ["sandbox.created", "sandbox.started", "sandbox.stopped", "sandbox.deleted", "snapshot.created"];

interface Webhook {
  id: string;
  url: string;
  events: string[];
  createdAt: string;
}
interface Delivery {
  id: string;
  event: string;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  lastError?: string;
  createdAt: string;
  updatedAt: string;
}

export function WebhooksPage() {
  const list = useData((signal) => api<{ webhooks: Webhook[] }>("/v1/webhooks", { signal }), []);
  const [error, setError] = useState<unknown>(undefined);
  const [secret, setSecret] = useState<string | undefined>(undefined);
  const [open, setOpen] = useState<string | undefined>(undefined);
  const hooks = list.data?.webhooks ?? [];
  return (
    <section>
      <div class="page-head">
        <h1>Webhooks</h1>
      </div>
      <form
        class="form card"
        onSubmit={async (e) => {
          e.preventDefault();
          const form = e.target as HTMLFormElement;
          const f = new FormData(form);
          setError(undefined);
          try {
            const made = await api<{ secret: string }>("/v1/webhooks", {
              method: "POST",
              body: { url: String(f.get("url") ?? "").trim(), events: f.getAll("events").map(String) },
            });
            setSecret(made.secret);
            form.reset();
            list.reload();
          } catch (err) {
            setError(err);
          }
        }}
      >
        <label>
          Receiver URL
          <input name="url" type="url" required placeholder="https://example.com/kiln" />
        </label>
        <fieldset>
          <legend>Events</legend>
          <div class="checks">
            {EVENTS.map((ev) => (
              <label key={ev} class="inline">
                <input type="checkbox" name="events" value={ev} defaultChecked /> {ev}
              </label>
            ))}
          </div>
        </fieldset>
        <div class="actions">
          <button type="submit" class="primary" disabled={!can("webhooks:write")}>
            Add webhook
          </button>
        </div>
      </form>
      {secret ? (
        <div class="notice" role="status">
          <p>Signing secret (shown only this once; verify deliveries with it, Standard Webhooks):</p>
          <div class="copy-row">
            <input readOnly value={secret} class="mono grow" aria-label="Signing secret" />
            <button type="button" onClick={() => setSecret(undefined)}>
              Done
            </button>
          </div>
        </div>
      ) : null}
      <ErrorBox error={error ?? list.error} />
      {list.data === undefined && list.loading ? (
        <Loading what="Loading webhooks" />
      ) : hooks.length === 0 ? (
        <Empty>No webhooks.</Empty>
      ) : (
        <ul class="plain cards">
          {hooks.map((h) => (
            <li key={h.id} class="card">
              <div class="page-head">
                <div>
                  <strong class="mono">{h.url}</strong>
                  <div class="muted small">
                    {h.events.join(", ")} · since {when(h.createdAt)}
                  </div>
                </div>
                <div class="row-actions">
                  <button
                    type="button"
                    aria-expanded={open === h.id}
                    onClick={() => setOpen(open === h.id ? undefined : h.id)}
                  >
                    Deliveries
                  </button>
                  <ConfirmButton
                    label="Delete"
                    danger
                    disabled={!can("webhooks:write")}
                    question={`Delete the webhook to ${h.url}?`}
                    action={() =>
                      api(`/v1/webhooks/${encodeURIComponent(h.id)}`, { method: "DELETE" }).then(list.reload)
                    }
                  />
                </div>
              </div>
              {open === h.id ? <Deliveries id={h.id} /> : null}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Deliveries({ id }: { id: string }) {
  const list = useData(
    (signal) => api<{ deliveries: Delivery[] }>(`/v1/webhooks/${encodeURIComponent(id)}/deliveries`, { signal }),
    [id],
    5_000,
  );
  const deliveries = list.data?.deliveries ?? [];
  if (list.data === undefined && list.loading) return <Loading what="Loading deliveries" />;
  if (list.error) return <ErrorBox error={list.error} retry={list.reload} />;
  if (deliveries.length === 0) return <Empty>No deliveries yet.</Empty>;
  return (
    <table class="list" aria-label="Deliveries">
      <thead>
        <tr>
          <th>Event</th>
          <th>Status</th>
          <th>Attempts</th>
          <th class="hide-narrow">Last error</th>
          <th>Updated</th>
        </tr>
      </thead>
      <tbody>
        {deliveries.map((d) => (
          <tr key={d.id}>
            <td class="mono">{d.event}</td>
            <td>
              <span class={`outcome outcome-${d.status}`}>{d.status}</span>
            </td>
            <td>{d.attempts}</td>
            <td class="hide-narrow">{d.lastError ?? ""}</td>
            <td>{when(d.updatedAt)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

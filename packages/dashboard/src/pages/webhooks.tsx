/** Webhooks: create (the secret is shown once), delete, and each one's deliveries. */
import { WEBHOOK_EVENT_INFO, WEBHOOK_EVENTS } from "@kiln/core/vocabulary";
import { useState } from "preact/hooks";
import { api, can } from "../api.ts";
import { DeleteButton, Listed, ResourceTable, useAction, useResource } from "../resource.tsx";
import { ErrorBox, when } from "../ui.tsx";

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
  const list = useResource<Webhook>("/v1/webhooks", "webhooks");
  const add = useAction();
  const [secret, setSecret] = useState<string | undefined>(undefined);
  const [open, setOpen] = useState<string | undefined>(undefined);
  return (
    <section>
      <div class="page-head">
        <h1>Webhooks</h1>
      </div>
      <form
        class="form card"
        onSubmit={add.submit(async (form, f) => {
          const made = await api<{ secret: string }>("/v1/webhooks", {
            method: "POST",
            body: { url: String(f.get("url") ?? "").trim(), events: f.getAll("events").map(String) },
          });
          setSecret(made.secret);
          form.reset();
          list.reload();
        })}
      >
        <label>
          Receiver URL
          <input name="url" type="url" required placeholder="https://example.com/kiln" />
        </label>
        <fieldset>
          <legend>Events</legend>
          <div class="checks">
            {WEBHOOK_EVENTS.map((ev) => (
              <label key={ev} class="inline" title={WEBHOOK_EVENT_INFO[ev].description}>
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
      <ErrorBox error={add.error ?? list.error} />
      <Listed list={list} what="Loading webhooks" empty="No webhooks.">
        {(hooks) => (
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
                    <DeleteButton
                      path={`/v1/webhooks/${encodeURIComponent(h.id)}`}
                      scope="webhooks:write"
                      question={`Delete the webhook to ${h.url}?`}
                      done={list.reload}
                    />
                  </div>
                </div>
                {open === h.id ? <Deliveries id={h.id} /> : null}
              </li>
            ))}
          </ul>
        )}
      </Listed>
    </section>
  );
}

function Deliveries({ id }: { id: string }) {
  const list = useResource<Delivery>(`/v1/webhooks/${encodeURIComponent(id)}/deliveries`, "deliveries", 5_000);
  // "Loading" until the first answer; after that an error shows in place of the table.
  if (list.error && !(list.data === undefined && list.loading)) {
    return <ErrorBox error={list.error} retry={list.reload} />;
  }
  return (
    <ResourceTable
      list={list}
      empty="No deliveries yet."
      label="Deliveries"
      wrap={false}
      actions={false}
      columns={["Event", "Status", "Attempts", { title: "Last error", narrow: true }, "Updated"]}
      row={(d) => (
        <tr key={d.id}>
          <td class="mono">{d.event}</td>
          <td>
            <span class={`outcome outcome-${d.status}`}>{d.status}</span>
          </td>
          <td>{d.attempts}</td>
          <td class="hide-narrow">{d.lastError ?? ""}</td>
          <td>{when(d.updatedAt)}</td>
        </tr>
      )}
    />
  );
}

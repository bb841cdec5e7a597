/** The audit log: the newest events, filtered by action, key and sandbox; follows new events live. */
import { AUDIT_ACTION_INFO, AUDIT_ACTIONS } from "@kiln/core/vocabulary";
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.ts";
import { matches } from "../format.ts";
import { Table } from "../resource.tsx";
import { Empty, ErrorBox, Loading } from "../ui.tsx";

function short(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

interface AuditEvent {
  id: number;
  at: string;
  orgId: string;
  keyId: string | null;
  action: string;
  target: string | null;
  detail?: Record<string, unknown>;
  outcome: string;
  status: number;
  durationMs: number;
}

const FOLLOW_MS = 2_000;
const KEEP = 1000;

export function AuditPage() {
  const [events, setEvents] = useState<AuditEvent[] | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [follow, setFollow] = useState(true);
  const [filter, setFilter] = useState({ action: "", key: "", sandbox: "" });
  const last = useRef<number | undefined>(undefined);

  useEffect(() => {
    api<{ events: AuditEvent[] }>("/v1/audit", { query: { limit: "200" } }).then((r) => {
      setEvents(r.events);
      last.current = r.events.at(-1)?.id ?? 0;
    }, setError);
  }, []);

  useEffect(() => {
    if (!follow) return;
    const timer = setInterval(async () => {
      if (last.current === undefined || document.visibilityState !== "visible") return;
      try {
        const r = await api<{ events: AuditEvent[] }>("/v1/audit", {
          query: { after: String(last.current), limit: "500" },
        });
        if (r.events.length > 0) {
          last.current = r.events.at(-1)?.id ?? last.current;
          setEvents((old) => [...(old ?? []), ...r.events].slice(-KEEP));
        }
        setError(undefined);
      } catch (err) {
        setError(err);
      }
    }, FOLLOW_MS);
    return () => clearInterval(timer);
  }, [follow]);

  const shown = (events ?? []).filter((e) => matches(e, filter)).reverse();
  const field = (k: keyof typeof filter, label: string, placeholder: string, list?: string) => (
    <label>
      {label}
      <input
        type="search"
        list={list}
        placeholder={placeholder}
        value={filter[k]}
        onInput={(e) => setFilter({ ...filter, [k]: (e.target as HTMLInputElement).value })}
      />
    </label>
  );
  return (
    <section>
      <div class="page-head">
        <h1>Audit log</h1>
        <label class="inline">
          <input type="checkbox" checked={follow} onChange={() => setFollow(!follow)} /> Follow live
        </label>
      </div>
      <div class="filters">
        {field("action", "Action", "sandbox.create", "audit-actions")}
        <datalist id="audit-actions">
          {AUDIT_ACTIONS.map((a) => (
            <option key={a} value={a} label={AUDIT_ACTION_INFO[a]} />
          ))}
        </datalist>
        {field("key", "Key", "key_…")}
        {field("sandbox", "Sandbox", "sandbox id")}
      </div>
      <ErrorBox error={error} />
      {events === undefined && !error ? (
        <Loading what="Loading events" />
      ) : shown.length === 0 ? (
        <Empty>No events{filter.action || filter.key || filter.sandbox ? " match the filter" : " yet"}.</Empty>
      ) : (
        <Table
          label="Audit events"
          actions={false}
          columns={[
            "When",
            "Action",
            "Outcome",
            { title: "Key", narrow: true },
            "Target",
            { title: "Detail", narrow: true },
          ]}
        >
          {shown.map((e) => (
            <tr key={e.id}>
              <td class="nowrap">{short(e.at)}</td>
              <td class="mono">{e.action}</td>
              <td>
                <span class={`outcome outcome-${e.outcome}`}>{e.outcome}</span> <span class="muted">{e.status}</span>
              </td>
              <td class="hide-narrow mono">{e.keyId ?? "—"}</td>
              <td class="mono" title={e.target ?? undefined}>
                {e.target && e.target.length > 24 ? `${e.target.slice(0, 12)}…` : (e.target ?? "—")}
              </td>
              <td class="hide-narrow mono small detail" title={e.detail ? JSON.stringify(e.detail) : undefined}>
                {e.detail ? JSON.stringify(e.detail) : ""}
              </td>
            </tr>
          ))}
        </Table>
      )}
    </section>
  );
}

/**
 * Quotas and current usage. Usage is counted from the organisation's own sandboxes; the limits
 * come from GET /v1/orgs, which only orgs:admin keys may read (others see usage alone).
 */
import { api, can, me, type SandboxInfo } from "../api.ts";
import { usage } from "../format.ts";
import { ErrorBox, Loading, useData } from "../ui.tsx";

interface Org {
  id: string;
  name: string;
  quotas: { maxSandboxes?: number; maxCpus?: number; maxMemoryMb?: number; createsPerMinute?: number };
}

function Meter({ label, used, limit, unit = "" }: { label: string; used: number; limit?: number; unit?: string }) {
  return (
    <div class="meter">
      <div class="meter-head">
        <span>{label}</span>
        <span>
          {used}
          {unit} {limit !== undefined ? `of ${limit}${unit}` : <span class="muted">(no limit)</span>}
        </span>
      </div>
      {limit !== undefined ? (
        <progress max={Math.max(limit, 1)} value={Math.min(used, limit)} aria-label={`${label}: ${used} of ${limit}`} />
      ) : null}
    </div>
  );
}

export function QuotasPage() {
  const sandboxes = useData((signal) => api<{ sandboxes: SandboxInfo[] }>("/v1/sandboxes", { signal }), [], 5_000);
  const admin = can("orgs:admin");
  const orgs = useData(
    (signal) => (admin ? api<{ orgs: Org[] }>("/v1/orgs", { signal }) : Promise.resolve({ orgs: [] as Org[] })),
    [admin],
  );
  const mine = orgs.data?.orgs.find((o) => o.id === me.value?.org.id);
  const u = usage(sandboxes.data?.sandboxes ?? []);
  return (
    <section>
      <div class="page-head">
        <h1>Quotas and usage</h1>
      </div>
      <p class="muted">Organisation {me.value?.org.name}.</p>
      <ErrorBox error={sandboxes.error ?? orgs.error} />
      {sandboxes.data === undefined ? (
        <Loading what="Counting" />
      ) : (
        <div class="meters card">
          <Meter label="Sandboxes (running or stopped)" used={u.sandboxes} limit={mine?.quotas.maxSandboxes} />
          <Meter label="CPUs of running sandboxes" used={u.cpus} limit={mine?.quotas.maxCpus} />
          <Meter label="Memory of running sandboxes" used={u.memoryMb} limit={mine?.quotas.maxMemoryMb} unit=" MB" />
          <p class="small muted">
            Creates per minute: {mine?.quotas.createsPerMinute ?? (admin ? "no limit" : "—")}.{" "}
            {admin ? "" : "Limits are shown to keys with the orgs:admin scope."}
          </p>
        </div>
      )}
      {admin && (orgs.data?.orgs.length ?? 0) > 1 ? (
        <>
          <h2>All organisations</h2>
          <div class="table-wrap">
            <table class="list" aria-label="Organisations">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Max sandboxes</th>
                  <th>Max CPUs</th>
                  <th>Max memory</th>
                  <th>Creates / min</th>
                </tr>
              </thead>
              <tbody>
                {orgs.data?.orgs.map((o) => (
                  <tr key={o.id}>
                    <td>{o.name}</td>
                    <td>{o.quotas.maxSandboxes ?? "—"}</td>
                    <td>{o.quotas.maxCpus ?? "—"}</td>
                    <td>{o.quotas.maxMemoryMb ? `${o.quotas.maxMemoryMb} MB` : "—"}</td>
                    <td>{o.quotas.createsPerMinute ?? "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
    </section>
  );
}

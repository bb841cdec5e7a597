/** The server's shared parts, made once per server and handed to every request by the pipeline. */
import type { Kiln } from "@kiln/core";
import type { AuditLog } from "../audit/audit-log.ts";
import type { AdmissionHook } from "../hooks/admission.ts";
import type { WebhookDispatcher } from "../hooks/webhooks.ts";
import type { Store } from "../store/store.ts";
import type { HandleCache } from "../tenancy/handle-cache.ts";
import type { QuotaGate } from "../tenancy/quotas.ts";
import type { KeyHasher } from "./keys.ts";

export interface Services {
  kiln: Kiln;
  store: Store;
  hasher: KeyHasher;
  handles: HandleCache;
  audit: AuditLog;
  quotas: QuotaGate;
  webhooks: WebhookDispatcher;
  admission?: AdmissionHook;
  log: (line: string) => void;
  /** KILN_ALLOW_PRIVATE_HOOKS */
  allowPrivateHooks: boolean;
  /** KILN_SSE_KEEPALIVE_MS (see sse.ts). @default 15000 */
  sseKeepAliveMs?: number;
}

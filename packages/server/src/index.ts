export { createApp, OPENAPI_PATH } from "./app.ts";
export { type ChainCheck, eventHash, GENESIS_HASH, verifyChain } from "./audit/chain.ts";
export { DEFAULT_MAX_UPLOAD_MB, DEFAULT_PORT, poolList, type ServerConfig, serverConfigFromEnv } from "./config.ts";
export {
  type HttpReferenceOptions,
  type OpenApiDocument,
  operationAnchor,
  renderHttpReference,
} from "./docs/http-reference.ts";
export { type ErrorBody, HttpError, STATUS_BY_CODE } from "./errors.ts";
export { hasScope, type Principal, SCOPES, type Scope } from "./pipeline/principal.ts";
export { type RunningServer, startServer } from "./server.ts";
export type { AuditEvent, KeyRow, OrgRow, Store } from "./store/store.ts";

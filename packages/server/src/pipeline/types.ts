import type { HttpBindings } from "@hono/node-server";
import type { OrgScope } from "../tenancy/org-scope.ts";
import type { Principal } from "./principal.ts";
import type { Services } from "./services.ts";

/** What every /v1 handler finds on its context once the pipeline has run. */
export interface AppEnv {
  Bindings: HttpBindings;
  Variables: {
    principal: Principal;
    /** The caller's organisation's view of Kiln: the only way routes reach sandboxes. */
    tenant: OrgScope;
    /** The server's shared parts the pipeline's steps and the admin routes use. */
    services: Services;
  };
}

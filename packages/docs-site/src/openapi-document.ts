/**
 * The server's OpenAPI document, produced in this process: startServer on a loopback port with a
 * throwaway data dir and an injected Kiln (which never reaches the engine: the document is made
 * from the routes' schemas), GET /v1/openapi.json, close. The same code path as a running
 * server's, so the static reference matches what `kiln serve` answers.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kiln } from "@kiln/core";
import { OPENAPI_PATH, type OpenApiDocument, startServer } from "@kiln/server";

export async function openApiDocument(): Promise<OpenApiDocument> {
  const dataDir = await mkdtemp(join(tmpdir(), "kiln-docs-openapi-"));
  // A local Kiln whatever KILN_URL says: it is never used, only handed to the server.
  const kiln = new Kiln({ docker: { socketPath: "/nonexistent/kiln-docs-build.sock" } });
  try {
    const server = await startServer({ host: "127.0.0.1", port: 0, dataDir, kiln, log: () => {} });
    try {
      const res = await fetch(`${server.url}${OPENAPI_PATH}`);
      if (!res.ok) throw new Error(`${OPENAPI_PATH} answered ${res.status}`);
      return (await res.json()) as OpenApiDocument;
    } finally {
      await server.close();
    }
  } finally {
    await kiln.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

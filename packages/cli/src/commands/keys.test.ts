import { SCOPE_INFO, SCOPES } from "@kiln/core/vocabulary";
import { describe, expect, it } from "vitest";
import { UsageError } from "../errors.ts";
import { createProgram } from "../program.ts";

/** `kiln keys create` parsed, never run: a wrong scope fails while parsing, before any request. */
async function parse(...args: string[]): Promise<unknown> {
  const program = createProgram();
  program.configureOutput({ writeOut: () => {}, writeErr: () => {} });
  return program.parseAsync(["node", "kiln", "keys", "create", ...args]).then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe("kiln keys create --scope", () => {
  it("refuses a name that is not a scope, listing the scopes", async () => {
    const error = await parse("ci", "--scope", "sandboxes:rad", "--url", "http://127.0.0.1:9", "--api-key", "k");
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe(`--scope: "sandboxes:rad" is not a scope; one of: ${SCOPES.join(", ")}`);
  });

  it("lists every scope with what it allows under --help", () => {
    const create = createProgram()
      .commands.find((c) => c.name() === "keys")
      ?.commands.find((c) => c.name() === "create");
    let help = "";
    create?.configureOutput({ writeOut: (s) => (help += s) });
    create?.outputHelp();
    for (const scope of SCOPES) expect(help).toContain(`  ${scope} `);
    expect(help).toContain(SCOPE_INFO["sandboxes:exec"]);
  });
});

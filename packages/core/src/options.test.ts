// Unknown options are refused with the field named, wherever options are checked.
import { describe, expect, it } from "vitest";
import { ConversationSandboxes } from "./conversations/conversation-sandboxes.ts";
import { InvalidArgumentError } from "./errors.ts";
import { Kiln } from "./kiln.ts";
import { validateCreate } from "./sandbox/create-options.ts";
import { bindTools } from "./tools/binding.ts";
import type { DockerClient, KilnOptions } from "./types.ts";

function refused(work: () => unknown): InvalidArgumentError {
  try {
    work();
  } catch (err) {
    if (err instanceof InvalidArgumentError) return err;
    throw err;
  }
  throw new Error("not refused");
}

describe("unknown options", () => {
  it("create(): a misspelt resource, a top-level typo, a volume field", () => {
    const memory = refused(() => validateCreate({ resources: { memory: 512 } }));
    expect(memory.field).toBe("options.resources.memory");
    expect(memory.message).toMatch(/unknown option; options.resources accepts cpus, memoryMb, diskMb, pids/);
    expect(refused(() => validateCreate({ timeoutMs: 5 })).field).toBe("options.timeoutMs");
    expect(
      refused(() => validateCreate({ volumes: [{ volume: "v", mountPath: "/data", readonly: true }] })).field,
    ).toBe("options.volumes[0].readonly");
    // Defaults are checked the same way, when the Kiln is made.
    expect(refused(() => new Kiln({ defaults: { resources: { memory: 1 } } as never })).field).toBe(
      "options.resources.memory",
    );
  });

  it("new Kiln(): an option it does not know", () => {
    expect(refused(() => new Kiln({ socketPath: "/x" } as KilnOptions)).field).toBe("options.socketPath");
  });

  it("ConversationSandboxes' options", () => {
    const kiln = new Kiln();
    expect(refused(() => new ConversationSandboxes({ kiln, namePrefix: "t-", idleMs: 5 } as never)).field).toBe(
      "options.idleMs",
    );
    void kiln.close();
  });

  it("the tools' options", () => {
    const kiln = new Kiln();
    expect(refused(() => bindTools({ kiln, idleTimeout: 5 } as never, { name: "t", namePrefix: "t-" })).field).toBe(
      "options.idleTimeout",
    );
    void kiln.close();
  });
});

describe("KilnOptions.docker", () => {
  it("is typed without dockerode: a client's shape or connection options", () => {
    const client: DockerClient = { modem: {}, ping: () => Promise.resolve("OK") };
    const options: KilnOptions[] = [{ docker: { socketPath: "/var/run/docker.sock" } }, { docker: client }];
    expect(options).toHaveLength(2);
  });
});

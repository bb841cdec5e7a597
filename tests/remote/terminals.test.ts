// Terminals (over the PTY WebSocket, with a ticket), background processes and preview URLs
// through a real Kiln server: the same Sandbox API as in-process.
import { setTimeout as sleep } from "node:timers/promises";
import { NotFoundError } from "@kiln/core";
import { describe, expect, it } from "vitest";
import { sandbox as made, remoteKiln, server } from "./helpers.ts";

const kiln = remoteKiln();
const sandbox = await made(kiln);

describe("the remote client", () => {
  it("opens a terminal, resizes it, types into it, kills it", async () => {
    const pty = await sandbox.pty.create({ cols: 80, rows: 24 });
    let out = "";
    pty.onData((bytes) => {
      out += Buffer.from(bytes).toString("utf8");
    });
    await pty.resize(90, 33);
    pty.write("stty size\n");
    for (let i = 0; i < 300 && !out.includes("33 90"); i++) await sleep(20);
    expect(out).toContain("33 90");
    const again = await sandbox.pty.connect(pty.id);
    await pty.kill();
    expect(await pty.wait()).toEqual({ exitCode: 137 });
    expect(await again.wait()).toEqual({ exitCode: 137 });
  });

  it("starts, follows and waits for background processes", async () => {
    const { pid } = await sandbox.processes.start("echo hi; sleep 0.3; echo bye >&2; exit 2", { tag: "r" });
    const chunks: string[] = [];
    const logs = await sandbox.processes.logs(pid, { follow: true, onStdout: (c) => chunks.push(c) });
    expect(logs).toEqual({ stdout: "hi\n", stderr: "bye\n" });
    expect(chunks.join("")).toBe("hi\n");
    expect(await sandbox.processes.wait(pid)).toEqual({ exitCode: 2 });
    expect((await sandbox.processes.list()).find((p) => p.pid === pid)).toMatchObject({ tag: "r", running: false });
    await expect(sandbox.processes.signal(999_999)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("makes preview URLs on the server's address", async () => {
    await sandbox.processes.start("python3 -m http.server 8123 --bind 127.0.0.1");
    await sandbox.exec(
      "for i in $(seq 100); do python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 8123))' 2>/dev/null && exit 0; sleep 0.1; done",
    );
    const preview = await sandbox.previewUrl(8123);
    expect(preview.url.startsWith(`${server().url}/preview/${sandbox.id}/8123/`)).toBe(true);
    expect((await fetch(preview.url)).status).toBe(200);
  });
});

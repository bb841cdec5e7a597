// The JSON calls' transport against a real HTTP server on loopback (node:http, no Kiln server
// needed): keep-alive reuse, a reused connection the server drops before answering (sent again
// on a fresh one), and a fresh connection that fails (reported, not sent again).
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ServerUnavailableError, UnauthorizedError } from "../errors.ts";
import { HttpClient } from "./http-client.ts";

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** A server answering `{ n }` (its request count) on each connection; `drop` may cut a request instead. */
async function start(drop: (requestOnSocket: number, socketNumber: number) => boolean): Promise<string> {
  const perSocket = new WeakMap<Socket, number>();
  const sockets: Socket[] = [];
  let requests = 0;
  server = createServer((req, res) => {
    const socket = req.socket;
    if (!sockets.includes(socket)) sockets.push(socket);
    const onSocket = (perSocket.get(socket) ?? 0) + 1;
    perSocket.set(socket, onSocket);
    req.resume();
    req.on("end", () => {
      if (drop(onSocket, sockets.indexOf(socket) + 1)) {
        socket.destroy(); // no answer at all: the client sees ECONNRESET
        return;
      }
      requests++;
      if (req.headers.authorization !== "Bearer kiln_test_key_0123456789") {
        res.writeHead(401, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { code: "UNAUTHORIZED", message: "Unknown API key" } }));
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ n: requests, socket: sockets.indexOf(socket) + 1 }));
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("HttpClient JSON calls", () => {
  it("reuse one keep-alive connection", async () => {
    const client = new HttpClient(await start(() => false), "kiln_test_key_0123456789");
    const a = await client.json<{ socket: number }>("POST", "/x", { json: { a: 1 }, what: "test" });
    const b = await client.json<{ socket: number }>("GET", "/x", { what: "test" });
    expect([a.socket, b.socket]).toEqual([1, 1]);
    client.close();
  });

  it("send a request again on a fresh connection when a reused one is dropped before any answer", async () => {
    // The second request on the first connection is dropped, as a server closing an idle connection would.
    const client = new HttpClient(
      await start((onSocket, socket) => socket === 1 && onSocket === 2),
      "kiln_test_key_0123456789",
    );
    expect((await client.json<{ socket: number }>("POST", "/x", { json: {}, what: "test" })).socket).toBe(1);
    const again = await client.json<{ n: number; socket: number }>("POST", "/x", { json: {}, what: "test" });
    expect(again).toEqual({ n: 2, socket: 2 });
    client.close();
  });

  it("report a fresh connection dropped before any answer, without sending again", async () => {
    let dropped = 0;
    const client = new HttpClient(
      await start(() => {
        dropped++;
        return true;
      }),
      "kiln_test_key_0123456789",
    );
    await expect(client.json("POST", "/x", { json: {}, what: "test" })).rejects.toBeInstanceOf(ServerUnavailableError);
    expect(dropped).toBe(1);
    client.close();
  });

  it("turn an error answer into its KilnError", async () => {
    const client = new HttpClient(await start(() => false), "kiln_wrong_key_0123456789");
    await expect(client.empty("DELETE", "/x", { what: "test" })).rejects.toBeInstanceOf(UnauthorizedError);
    client.close();
  });
});

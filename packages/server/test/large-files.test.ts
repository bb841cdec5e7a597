// A large file up and down through the server, generated and hashed on the fly (never held
// in memory), while the server process's RSS is watched: the server streams, it does not buffer.
// 256 MiB by default (more than the RSS bound, so a server that buffered would fail; core moves
// files at ~8 MB/s up here, so 1 GiB takes 4 minutes): KILN_TEST_LARGE_FILE_MB=1024 for 1 GiB,
// measured at 75 MiB of growth, the same as with 256 MiB.
import { createHash } from "node:crypto";
import { Kiln } from "@kiln/core";
import { afterAll, describe, expect, it } from "vitest";
import { startChildServer } from "./child-server.ts";
import { TEST_LABELS } from "./helpers.ts";

const SIZE = Number(process.env.KILN_TEST_LARGE_FILE_MB ?? 256) * 1024 * 1024;
const CHUNK = 1024 * 1024;
/** RSS may grow by this much at most while the file passes through (buffers, JIT, GC slack). */
const MAX_RSS_GROWTH = 200 * 1024 * 1024;

// The server in its own process, so that its RSS is its own (not the test client's).
const t = await startChildServer();
const created = await fetch(`${t.url}/v1/sandboxes`, {
  method: "POST",
  headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json" },
  body: JSON.stringify({ labels: TEST_LABELS }),
});
const box = (await created.json()) as { id: string };
afterAll(async () => {
  await t.stop();
  const kiln = new Kiln();
  await (await kiln.get(box.id).catch(() => undefined))?.delete();
  await kiln.close();
});

/** Deterministic bytes: each 1 MiB chunk differs (its index is stamped in), so reordering shows. */
function generated(hash: ReturnType<typeof createHash>): ReadableStream<Uint8Array> {
  const base = new Uint8Array(CHUNK).map((_, i) => (i * 31 + 7) % 251);
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= SIZE) return controller.close();
      const chunk = base.slice();
      new DataView(chunk.buffer).setUint32(0, sent / CHUNK);
      hash.update(chunk);
      sent += CHUNK;
      controller.enqueue(chunk);
    },
  });
}

async function watchRss(): Promise<{ stop(): number }> {
  const baseline = await t.rss();
  let peak = baseline;
  const timer = setInterval(() => {
    t.rss().then(
      (rss) => {
        peak = Math.max(peak, rss);
      },
      () => {},
    );
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      return peak - baseline;
    },
  };
}

describe("large files", () => {
  it(
    "uploads and downloads a file larger than the RSS bound with flat server memory",
    async () => {
      const sent = createHash("sha256");
      const rss = await watchRss();
      const put = await fetch(`${t.url}/v1/sandboxes/${box.id}/files?path=big.bin`, {
        method: "PUT",
        headers: { authorization: `Bearer ${t.key}`, "content-type": "application/octet-stream" },
        body: generated(sent),
        duplex: "half",
      } as RequestInit);
      expect(put.status, await put.clone().text()).toBe(201);
      expect(((await put.json()) as { size: number }).size).toBe(SIZE);

      const get = await fetch(`${t.url}/v1/sandboxes/${box.id}/files?path=big.bin`, {
        headers: { authorization: `Bearer ${t.key}` },
      });
      expect(get.status).toBe(200);
      expect(Number(get.headers.get("content-length"))).toBe(SIZE);
      const received = createHash("sha256");
      let bytes = 0;
      for await (const chunk of get.body as unknown as AsyncIterable<Uint8Array>) {
        received.update(chunk);
        bytes += chunk.length;
      }
      const growth = rss.stop();
      expect(bytes).toBe(SIZE);
      expect(received.digest("hex")).toBe(sent.digest("hex"));
      console.log(
        `RSS growth while 2 x ${SIZE / CHUNK} MiB passed through: ${(growth / CHUNK).toFixed(0)} MiB (server process)`,
      );
      expect(growth).toBeLessThan(MAX_RSS_GROWTH);
    },
    10 * 60_000,
  );
});

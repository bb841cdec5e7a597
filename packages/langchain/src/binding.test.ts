// ThreadSandboxes' bookkeeping with a fake Kiln, so races and retries are exact.
import { type Kiln, KilnError, type Sandbox } from "@kiln/core";
import { describe, expect, it, vi } from "vitest";
import { ThreadSandboxes, type ThreadSandboxesOptions } from "./binding.ts";

class Gone extends KilnError {
  constructor() {
    super("SANDBOX_NOT_RUNNING", "stopped");
  }
}

function fakeKiln() {
  const events: string[] = [];
  const byName = new Map<string, Sandbox>();
  let n = 0;
  const kiln = {
    get: vi.fn(async (name: string) => {
      const found = byName.get(name);
      if (!found) throw new KilnError("SANDBOX_NOT_FOUND", `no ${name}`);
      return found;
    }),
    getOrCreate: vi.fn(async (name: string) => {
      events.push(`open ${name}`);
      await new Promise((r) => setTimeout(r, 5));
      const id = `${name}#${++n}`;
      const made = {
        id,
        name,
        stop: vi.fn(async () => {
          await new Promise((r) => setTimeout(r, 50));
          events.push(`stop ${id}`);
        }),
        delete: vi.fn(async () => void events.push(`delete ${id}`)),
      } as unknown as Sandbox;
      byName.set(name, made);
      return made;
    }),
  };
  return { kiln: kiln as unknown as Kiln & typeof kiln, events };
}

const options = (over: Partial<ThreadSandboxesOptions> = {}): ThreadSandboxesOptions => ({
  sandboxOptions: {},
  idleTimeoutMs: 0,
  release: "stop",
  namePrefix: "lc-",
  ...over,
});

describe("ThreadSandboxes", () => {
  it("opens a thread's sandbox once, even for concurrent first calls", async () => {
    const { kiln } = fakeKiln();
    const source = new ThreadSandboxes(kiln, options());
    const ids = await Promise.all([1, 2, 3].map(() => source.use("t1", async (s) => s.id)));
    expect(ids).toEqual(["lc-t1#1", "lc-t1#1", "lc-t1#1"]);
    expect(kiln.getOrCreate).toHaveBeenCalledTimes(1);
    expect(kiln.getOrCreate).toHaveBeenCalledWith("lc-t1", {
      labels: { "kiln-adapter": "langchain", "langchain-thread-id": "t1" },
    });
  });

  it("does not keep a failed open: the next call tries again", async () => {
    const { kiln } = fakeKiln();
    kiln.getOrCreate.mockRejectedValueOnce(new Error("engine down"));
    const source = new ThreadSandboxes(kiln, options());
    await expect(source.use("t", async (s) => s.id)).rejects.toThrow("engine down");
    expect(await source.use("t", async (s) => s.id)).toBe("lc-t#1");
  });

  it("opens the sandbox again once when it is gone, and gives up the second time", async () => {
    const { kiln } = fakeKiln();
    const source = new ThreadSandboxes(kiln, options());
    let calls = 0;
    const id = await source.use("t", async (s) => {
      if (++calls === 1) throw new Gone();
      return s.id;
    });
    expect(id).toBe("lc-t#2");
    await expect(
      source.use("t", async () => {
        throw new Gone();
      }),
    ).rejects.toBeInstanceOf(Gone);
    expect(kiln.getOrCreate).toHaveBeenCalledTimes(3);
  });

  it("close() applies the release mode to threads and deletes the tool set's own sandbox", async () => {
    const { kiln, events } = fakeKiln();
    const source = new ThreadSandboxes(kiln, options({ release: "stop" }));
    await source.use("t", async () => {});
    await source.use(undefined, async () => {});
    const toolSetName = kiln.getOrCreate.mock.calls[1]![0];
    expect(toolSetName).toMatch(/^lc-toolset-/);
    await source.close();
    expect(events.filter((e) => !e.startsWith("open")).sort()).toEqual([`delete ${toolSetName}#2`, "stop lc-t#1"]);
    expect(source.openNames).toEqual([]);
  });

  it("stops an idle sandbox, and a later call opens it only after the stop finished", async () => {
    vi.useFakeTimers();
    try {
      const { kiln, events } = fakeKiln();
      const source = new ThreadSandboxes(kiln, options({ idleTimeoutMs: 1_000 }));
      const first = source.use("t", async (s) => s.id);
      await vi.advanceTimersByTimeAsync(5); // opened at t=5: idle from then on
      expect(await first).toBe("lc-t#1");
      await vi.advanceTimersByTimeAsync(999);
      expect(events).toEqual(["open lc-t"]);
      await vi.advanceTimersByTimeAsync(1); // t=1005: the stop starts and takes 50 ms
      const second = source.use("t", async (s) => s.id);
      await vi.advanceTimersByTimeAsync(60);
      expect(await second).toBe("lc-t#2");
      expect(events).toEqual(["open lc-t", "stop lc-t#1", "open lc-t"]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("does not stop a sandbox while a call is running in it", async () => {
    vi.useFakeTimers();
    try {
      const { kiln, events } = fakeKiln();
      const source = new ThreadSandboxes(kiln, options({ idleTimeoutMs: 100 }));
      await Promise.all([source.use("t", async () => {}), vi.advanceTimersByTimeAsync(10)]);
      const slow = source.use("t", () => new Promise((r) => setTimeout(r, 500)));
      await vi.advanceTimersByTimeAsync(400);
      expect(events).toEqual(["open lc-t"]);
      await vi.advanceTimersByTimeAsync(100);
      await slow;
      await vi.advanceTimersByTimeAsync(150);
      expect(events).toEqual(["open lc-t", "stop lc-t#1"]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("releases an idle thread per `release`, and close() still deletes an idle-stopped tool set sandbox", async () => {
    vi.useFakeTimers();
    try {
      const { kiln, events } = fakeKiln();
      const source = new ThreadSandboxes(kiln, options({ idleTimeoutMs: 100, release: "delete" }));
      const calls = Promise.all([source.use("t", async () => {}), source.use(undefined, async () => {})]);
      await vi.advanceTimersByTimeAsync(10);
      await calls;
      await vi.advanceTimersByTimeAsync(200);
      const toolSetName = kiln.getOrCreate.mock.calls[1]![0];
      expect(events.filter((e) => !e.startsWith("open")).sort()).toEqual(["delete lc-t#1", `stop ${toolSetName}#2`]);
      expect(source.openNames).toEqual([]);

      await source.close();
      expect(events.at(-1)).toBe(`delete ${toolSetName}#2`);
      await source.close(); // nothing left: no second delete
      expect(events.filter((e) => e.startsWith("delete lc-toolset"))).toHaveLength(1);
    } finally {
      vi.useRealTimers();
    }
  });
});

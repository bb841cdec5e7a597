// The five tools' one implementation (runTool) against a real sandbox: what every adapter, the
// MCP server and the CLI return to a model.
import { describe, expect, it } from "vitest";
import { runTool, toolLimits } from "../src/tools/index.ts";
import { sandbox, testKiln } from "./helpers.ts";

const kiln = testKiln();
const limits = { ...toolLimits({ maxOutputChars: 200 }), maxImageBytes: 100_000 };

describe("runTool", () => {
  it("writes, lists and reads text, resolving paths against /workspace", async () => {
    const box = await sandbox(kiln);
    expect(await runTool("write_file", { path: "data/a.txt", content: "héllo" }, box, limits)).toEqual({
      ok: true,
      text: "Wrote 6 bytes to /workspace/data/a.txt.",
      images: [],
    });
    expect((await runTool("list_files", { path: "data" }, box, limits)).text).toBe(
      "/workspace/data (1 entries):\na.txt  6 B",
    );
    expect((await runTool("read_file", { path: "../workspace/data/a.txt" }, box, limits)).text).toBe("héllo");
    expect((await runTool("read_file", { path: "data" }, box, limits)).text).toMatch(/is a directory: use list_files/);
    const missing = await runTool("read_file", { path: "nope.txt" }, box, limits);
    expect(missing.ok).toBe(false);
    expect(missing.text).toMatch(/^Error: No such file/);
  });

  it("reads only the start of a big file and says how to read on", async () => {
    const box = await sandbox(kiln);
    await box.exec("seq 1 200000 > big.txt");
    const out = await runTool("read_file", { path: "big.txt" }, box, limits);
    expect(out.ok).toBe(true);
    expect(out.text.startsWith("1\n2\n3\n")).toBe(true);
    expect(out.text).toMatch(/\[\.\.\. cut: showing the first 200 of \d+ characters; read further/);
  });

  it("attaches images by their content (a chart saved without an extension), describes binaries", async () => {
    const box = await sandbox(kiln);
    await box.runCode(
      "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.savefig('chart', format='png', dpi=30)",
    );
    const chart = await runTool("read_file", { path: "chart" }, box, limits);
    expect(chart.images).toHaveLength(1);
    expect(chart.images[0]?.mediaType).toBe("image/png");
    expect(chart.text).toMatch(/^\/workspace\/chart \(image\/png, [\d.]+ KiB\) \[image 1, attached\]$/);
    await box.exec(
      "head -c 300000 /dev/urandom > noise.bin && printf '\\211PNG' > big.png && head -c 200000 /dev/zero >> big.png",
    );
    expect((await runTool("read_file", { path: "noise.bin" }, box, limits)).text).toMatch(/is a binary file of/);
    const big = await runTool("read_file", { path: "big.png" }, box, limits);
    expect(big.images).toEqual([]);
    expect(big.text).toMatch(/too large to attach/);
  });

  it("returns the code's failure and a failed command as text, not ok", async () => {
    const box = await sandbox(kiln);
    const code = await runTool("run_code", { code: "1/0" }, box, limits);
    expect(code.ok).toBe(false);
    expect(code.text).toMatch(/ZeroDivisionError/);
    const command = await runTool("run_command", { command: "echo out; exit 3" }, box, limits);
    expect(command).toEqual({ ok: false, text: "exit code: 3\n\nstdout:\nout", images: [] });
    const chart = await runTool(
      "run_code",
      { code: "import matplotlib.pyplot as plt\nplt.plot([1]); plt.show()" },
      box,
      limits,
    );
    expect(chart.images[0]?.mediaType).toBe("image/png");
  });
});

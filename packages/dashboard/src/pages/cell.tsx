/**
 * A code cell: Python, JavaScript or TypeScript in the sandbox's kernel (POST …/code, streamed).
 * Rich results are shown safely: images as <img> from data: URLs (an SVG in an <img> runs no
 * script), HTML (tables) in a sandboxed iframe with no script and no same-origin rights, every
 * text as text.
 */
import { useState } from "preact/hooks";
import { type Execution, type Result, stream } from "../api.ts";
import { base64Utf8 } from "../format.ts";
import { ErrorBox } from "../ui.tsx";

const EXAMPLE: Record<string, string> = {
  python:
    "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nplt.plot([1, 4, 9, 16], marker='o')\nplt.title('squares')\nplt.show()",
  javascript: "const xs = [1, 2, 3].map((x) => x * x);\nxs",
  typescript: "const greet = (name: string): string => 'hello ' + name;\ngreet('kiln')",
};

export function ResultView({ result }: { result: Result }) {
  if (result.png)
    return <img class="result-img" alt="A chart the code drew" src={`data:image/png;base64,${result.png}`} />;
  if (result.jpeg)
    return <img class="result-img" alt="A JPEG the code made" src={`data:image/jpeg;base64,${result.jpeg}`} />;
  if (result.svg)
    return (
      <img
        class="result-img"
        alt="A drawing the code made"
        src={`data:image/svg+xml;base64,${base64Utf8(result.svg)}`}
      />
    );
  if (result.html)
    return (
      <iframe
        class="result-html"
        title="HTML output"
        sandbox=""
        referrerpolicy="no-referrer"
        srcdoc={`<!doctype html><meta charset="utf-8"><style>body{font:14px system-ui,sans-serif;margin:8px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>${result.html}`}
      />
    );
  if (result.json !== undefined) return <pre class="out">{JSON.stringify(result.json, null, 2)}</pre>;
  if (result.markdown) return <pre class="out">{result.markdown}</pre>;
  if (result.text !== undefined) return <pre class="out">{result.text}</pre>;
  return null;
}

export function CodeCell({ sandboxId, language: initial }: { sandboxId: string; language: string }) {
  const [language, setLanguage] = useState(initial);
  const [code, setCode] = useState(EXAMPLE[initial] ?? "");
  const [running, setRunning] = useState(false);
  const [stdout, setStdout] = useState("");
  const [stderr, setStderr] = useState("");
  const [results, setResults] = useState<Result[]>([]);
  const [execution, setExecution] = useState<Execution | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);

  const run = async () => {
    if (running) return;
    setRunning(true);
    setStdout("");
    setStderr("");
    setResults([]);
    setExecution(undefined);
    setError(undefined);
    try {
      await stream(
        `/v1/sandboxes/${encodeURIComponent(sandboxId)}/code`,
        { method: "POST", body: { code, language } },
        (event) => {
          if (event.type === "stdout") setStdout((s) => s + String(event.data));
          else if (event.type === "stderr") setStderr((s) => s + String(event.data));
          else if (event.type === "display") setResults((r) => [...r, event.result as Result]);
          else if (event.type === "execution") {
            const ex = event.execution as Execution;
            setExecution(ex);
            setResults(ex.results);
            setStdout(ex.stdout);
            setStderr(ex.stderr);
          } else if (event.type === "error") {
            const e = event.error as { code: string; message: string };
            setError(new Error(`${e.code}: ${e.message}`));
          }
        },
      );
    } catch (err) {
      setError(err);
    } finally {
      setRunning(false);
    }
  };

  return (
    <div class="cell">
      <div class="toolbar">
        <label for="cell-language">Language</label>
        <select
          id="cell-language"
          value={language}
          onChange={(e) => {
            const l = (e.target as HTMLSelectElement).value;
            if (code === EXAMPLE[language]) setCode(EXAMPLE[l] ?? "");
            setLanguage(l);
          }}
        >
          <option value="python">Python</option>
          <option value="javascript">JavaScript</option>
          <option value="typescript">TypeScript</option>
        </select>
        <button type="button" class="primary" disabled={running} onClick={() => void run()}>
          {running ? "Running…" : "Run"}
        </button>
        <span class="muted small hide-narrow">Ctrl+Enter runs</span>
      </div>
      <textarea
        class="code"
        aria-label="Code"
        spellcheck={false}
        rows={10}
        value={code}
        onInput={(e) => setCode((e.target as HTMLTextAreaElement).value)}
        onKeyDown={(e) => {
          if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
            e.preventDefault();
            void run();
          }
        }}
      />
      <ErrorBox error={error} />
      <div class="outputs" aria-live="polite">
        {stdout ? <pre class="out stdout">{stdout}</pre> : null}
        {stderr ? <pre class="out stderr">{stderr}</pre> : null}
        {results.map((r, i) => (
          <ResultView key={i} result={r} />
        ))}
        {execution?.error ? (
          <pre class="out stderr">
            {execution.error.name}: {execution.error.value}
            {"\n"}
            {execution.error.traceback}
          </pre>
        ) : null}
        {execution ? (
          <p class="muted small" data-status={execution.status}>
            {execution.status} in {Math.round(execution.durationMs)} ms
            {execution.truncated ? " (output truncated)" : ""}
          </p>
        ) : null}
      </div>
    </div>
  );
}

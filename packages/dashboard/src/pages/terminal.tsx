/**
 * The web terminal: xterm.js over the PTY WebSocket (design/server.md). Binary frames carry the
 * terminal's bytes both ways; a text frame `{type:"resize",cols,rows}` follows every fit to the
 * window; the server's `{type:"exit"}` ends it. A dropped socket reconnects to the same terminal,
 * and the server replays the scrollback it kept, so the screen comes back as it was.
 */
import { FitAddon } from "@xterm/addon-fit";
import { WebLinksAddon } from "@xterm/addon-web-links";
import { Terminal as XTerm } from "@xterm/xterm";
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.ts";
import { ErrorBox } from "../ui.tsx";

const RECONNECT_MS = [500, 1000, 2000, 4000, 8000];

const THEME = {
  background: "#1b1d23",
  foreground: "#e6e6e6",
  cursor: "#f97316",
  selectionBackground: "#3b4252",
  black: "#1b1d23",
  red: "#f87171",
  green: "#4ade80",
  yellow: "#facc15",
  blue: "#60a5fa",
  magenta: "#c084fc",
  cyan: "#22d3ee",
  white: "#e6e6e6",
  brightBlack: "#6b7280",
  brightRed: "#fca5a5",
  brightGreen: "#86efac",
  brightYellow: "#fde047",
  brightBlue: "#93c5fd",
  brightMagenta: "#d8b4fe",
  brightCyan: "#67e8f9",
  brightWhite: "#ffffff",
};

type Status = "connecting" | "open" | "reconnecting" | "exited" | "failed";

export function Terminal({ sandboxId }: { sandboxId: string }) {
  const host = useRef<HTMLElement>(null);
  const [status, setStatus] = useState<Status>("connecting");
  const [error, setError] = useState<unknown>(undefined);
  const [generation, setGeneration] = useState(0);
  const termRef = useRef<XTerm | null>(null);

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const term = new XTerm({
      cursorBlink: true,
      convertEol: false,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace',
      fontSize: 14,
      scrollback: 5000,
      theme: THEME,
    });
    termRef.current = term;
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.loadAddon(new WebLinksAddon());
    term.open(el);
    fit.fit();
    const encoder = new TextEncoder();
    let ws: WebSocket | undefined;
    let ptyId: string | undefined;
    let closed = false;
    let attempts = 0;
    let connections = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const id = encodeURIComponent(sandboxId);

    // Ctrl+Shift+C / Ctrl+Shift+V copy and paste (Ctrl+C stays the terminal's interrupt).
    term.attachCustomKeyEventHandler((e) => {
      if (e.type !== "keydown" || !e.ctrlKey || !e.shiftKey) return true;
      if (e.code === "KeyC") {
        const text = term.getSelection();
        if (text) void navigator.clipboard?.writeText(text).catch(() => {});
        return false;
      }
      if (e.code === "KeyV") {
        void navigator.clipboard
          ?.readText()
          .then((text) => term.paste(text))
          .catch(() => {});
        return false;
      }
      return true;
    });

    const send = (data: string | Uint8Array) => {
      if (ws?.readyState === WebSocket.OPEN) ws.send(data);
    };
    const sendSize = () => send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
    const input = term.onData((d) => send(encoder.encode(d)));
    const binary = term.onBinary((d) => send(Uint8Array.from(d, (c) => c.charCodeAt(0))));
    const resized = term.onResize(() => sendSize());

    const connect = async () => {
      try {
        if (ptyId === undefined) {
          const created = await api<{ ptyId: string }>(`/v1/sandboxes/${id}/pty`, {
            method: "POST",
            body: { cols: term.cols, rows: term.rows },
          });
          ptyId = created.ptyId;
        }
        const { ticket } = await api<{ ticket: string }>("/v1/tickets", { method: "POST" });
        if (closed) return;
        const scheme = location.protocol === "https:" ? "wss:" : "ws:";
        const socket = new WebSocket(
          `${scheme}//${location.host}/v1/sandboxes/${id}/pty/${encodeURIComponent(ptyId)}?ticket=${encodeURIComponent(ticket)}`,
        );
        socket.binaryType = "arraybuffer";
        ws = socket;
        const index = connections++;
        let first = true;
        socket.onopen = () => {
          attempts = 0;
          setStatus("open");
          setError(undefined);
          sendSize();
        };
        socket.onmessage = (event) => {
          if (typeof event.data === "string") {
            try {
              const msg = JSON.parse(event.data) as { type?: string; exitCode?: number };
              if (msg.type === "exit") {
                closed = true;
                setStatus("exited");
                term.write(`\r\n\x1b[2m[the shell exited with code ${msg.exitCode ?? "?"}]\x1b[0m\r\n`);
              }
            } catch {
              // not ours
            }
            return;
          }
          // A reconnect replays the scrollback: start from a clean screen so nothing shows twice.
          if (first && index > 0) term.reset();
          first = false;
          term.write(new Uint8Array(event.data as ArrayBuffer));
        };
        socket.onclose = () => {
          if (ws !== socket || closed) return;
          reconnect();
        };
      } catch (err) {
        setError(err);
        reconnect();
      }
    };
    const reconnect = () => {
      if (closed) return;
      const delay = RECONNECT_MS[Math.min(attempts, RECONNECT_MS.length - 1)] ?? 8000;
      attempts++;
      if (attempts > 12) {
        setStatus("failed");
        return;
      }
      setStatus("reconnecting");
      timer = setTimeout(() => void connect(), delay);
    };
    void connect();

    const observer = new ResizeObserver(() => {
      try {
        fit.fit();
      } catch {
        // hidden: nothing to fit
      }
    });
    observer.observe(el);
    term.focus();
    return () => {
      closed = true;
      clearTimeout(timer);
      observer.disconnect();
      input.dispose();
      binary.dispose();
      resized.dispose();
      ws?.close();
      term.dispose();
      termRef.current = null;
    };
  }, [sandboxId, generation]);

  return (
    <div class="terminal-panel">
      <div class="toolbar">
        <span class={`status status-${status}`} role="status">
          {status === "open"
            ? "Connected"
            : status === "connecting"
              ? "Connecting…"
              : status === "reconnecting"
                ? "Reconnecting…"
                : status === "exited"
                  ? "Exited"
                  : "Disconnected"}
        </span>
        <button
          type="button"
          onClick={() => {
            const text = termRef.current?.getSelection();
            if (text) void navigator.clipboard?.writeText(text);
          }}
        >
          Copy
        </button>
        <button
          type="button"
          onClick={() =>
            void navigator.clipboard
              ?.readText()
              .then((t) => termRef.current?.paste(t))
              .catch(() => {})
          }
        >
          Paste
        </button>
        {status === "exited" || status === "failed" ? (
          <button type="button" class="primary" onClick={() => setGeneration((g) => g + 1)}>
            New terminal
          </button>
        ) : null}
        <span class="muted small hide-narrow">Ctrl+Shift+C / Ctrl+Shift+V copy and paste</span>
      </div>
      <ErrorBox error={status === "open" ? undefined : error} />
      <div class="terminal-frame">
        <section class="terminal" ref={host} aria-label="Terminal" />
      </div>
    </div>
  );
}

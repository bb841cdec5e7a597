/**
 * Everything a command prints goes through here: JSON for scripts, tables sized to the
 * terminal for people, colour only on a TTY and never with NO_COLOR.
 */
import Table from "cli-table3";
import pc from "picocolors";

type Colors = ReturnType<typeof pc.createColors>;

/** Colour for a stream: only when it is a terminal, NO_COLOR is unset (any value turns it off) and TERM is not dumb. */
export function colorsFor(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): Colors {
  const enabled =
    stream.isTTY === true &&
    (env.NO_COLOR === undefined || env.NO_COLOR === "") &&
    env.TERM !== "dumb" &&
    !("FORCE_COLOR" in env && env.FORCE_COLOR === "0");
  return pc.createColors(enabled);
}

export const out = colorsFor(process.stdout);
export const err = colorsFor(process.stderr);

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A line on stderr: notes, saved paths, progress in plain form. */
export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** The terminal's width, or undefined when stdout is not a terminal (then columns are not cut). */
export function terminalColumns(): number | undefined {
  return process.stdout.isTTY ? process.stdout.columns || 80 : undefined;
}

/**
 * A borderless table like `docker ps`: a header row, columns two spaces apart. On a terminal,
 * the widest columns shrink (their cells cut with …) until the table fits its width.
 */
export function renderTable(head: string[], rows: string[][], width = terminalColumns()): string {
  const natural = head.map((h, i) => Math.max(h.length, ...rows.map((r) => visibleLength(r[i] ?? ""))) + 2);
  const widths = fit(natural, width);
  const table = new Table({
    head: head.map((h) => out.bold(h)),
    colWidths: widths,
    // Cut with "…" rather than wrapped: cli-table3's hard wrap splits colour codes.
    wordWrap: false,
    style: { head: [], border: [], "padding-left": 0, "padding-right": 2, compact: true },
    chars: {
      top: "",
      "top-mid": "",
      "top-left": "",
      "top-right": "",
      bottom: "",
      "bottom-mid": "",
      "bottom-left": "",
      "bottom-right": "",
      left: "",
      "left-mid": "",
      mid: "",
      "mid-mid": "",
      right: "",
      "right-mid": "",
      middle: "",
    },
  });
  for (const row of rows) table.push(row);
  return table
    .toString()
    .split("\n")
    .map((line) => line.trimEnd())
    .join("\n");
}

/** Shrinks the widest columns first until the sum fits; no column below 8 (or its natural width). */
export function fit(natural: number[], width: number | undefined): number[] {
  const widths = [...natural];
  if (width === undefined) return widths;
  const floor = natural.map((w) => Math.min(w, 8));
  let excess = widths.reduce((a, b) => a + b, 0) - width;
  while (excess > 0) {
    let widest = -1;
    for (let i = 0; i < widths.length; i++) {
      if ((widths[i] ?? 0) > (floor[i] ?? 0) && (widest < 0 || (widths[i] ?? 0) > (widths[widest] ?? 0))) widest = i;
    }
    if (widest < 0) break;
    widths[widest] = (widths[widest] ?? 0) - 1;
    excess--;
  }
  return widths;
}

function visibleLength(text: string): number {
  return text.replace(/\u001b\[[0-9;]*m/g, "").length;
}

/** "key: value" lines with the keys aligned, for `info`. */
export function renderPairs(pairs: [string, string][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${out.dim(`${k}:`.padEnd(width + 1))} ${v}`).join("\n");
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** "3 minutes ago" from an ISO time, as docker ps prints CREATED. */
export function ago(iso: string, now = Date.now()): string {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return iso;
  const s = Math.max(0, Math.round((now - then) / 1000));
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"} ago`;
  if (s < 60) return plural(s, "second");
  if (s < 3600) return plural(Math.floor(s / 60), "minute");
  if (s < 86_400) return plural(Math.floor(s / 3600), "hour");
  return plural(Math.floor(s / 86_400), "day");
}

export function stateColor(state: string): string {
  if (state === "running") return out.green(state);
  if (state === "error") return out.red(state);
  return out.yellow(state);
}

export function formatLabels(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

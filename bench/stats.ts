// Percentiles and the side-by-side table every benchmark prints.

export interface Series {
  label: string;
  samples: number[];
}

export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export async function measure(label: string, iterations: number, once: () => Promise<number>): Promise<Series> {
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) samples.push(await once());
  return { label, samples };
}

/** Times `work` only; `cleanup` runs after and is not counted. */
export async function timeOnly<T>(work: () => Promise<T>, cleanup?: (value: T) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  const value = await work();
  const elapsed = performance.now() - started;
  await cleanup?.(value);
  return elapsed;
}

export function table(title: string, rows: Series[], baseline: Series): string {
  const lines = [
    `### ${title}`,
    "",
    "| what | n | p50 ms | p95 ms | p50 ratio to baseline |",
    "| --- | ---: | ---: | ---: | ---: |",
  ];
  const base = percentile(baseline.samples, 50);
  for (const row of rows) {
    const p50 = percentile(row.samples, 50);
    const p95 = percentile(row.samples, 95);
    const ratio = row === baseline ? "baseline" : `${(p50 / base).toFixed(2)}x`;
    lines.push(`| ${row.label} | ${row.samples.length} | ${p50.toFixed(1)} | ${p95.toFixed(1)} | ${ratio} |`);
  }
  return lines.join("\n");
}

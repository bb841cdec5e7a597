import { InvalidArgumentError } from "commander";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * "30s", "5m", "1h", "1h30m", "500ms", "2d"; a bare number is seconds (as docker's --time).
 * Returns milliseconds. Throws commander's InvalidArgumentError, so a bad flag is a usage error.
 */
export function parseDuration(text: string): number {
  const value = text.trim();
  if (/^\d+(\.\d+)?$/.test(value)) return positive(Number(value) * 1_000, text);
  const parts = value.match(/^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/) ? value.match(/\d+(?:\.\d+)?(?:ms|s|m|h|d)/g) : null;
  if (!parts) throw new InvalidArgumentError(`"${text}" is not a duration: use e.g. 30s, 5m, 1h or 1h30m.`);
  let total = 0;
  for (const part of parts) {
    const [, amount, unit] = part.match(/^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/) ?? [];
    total += Number(amount) * (UNIT_MS[unit ?? ""] ?? Number.NaN);
  }
  return positive(total, text);
}

function positive(ms: number, text: string): number {
  if (!Number.isFinite(ms) || ms <= 0) throw new InvalidArgumentError(`"${text}" must be longer than zero.`);
  return Math.round(ms);
}

/** 1500 -> "1.5s", 90_000 -> "1m30s": for messages. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1_000).toFixed(1))}s`;
  // Rounded to whole seconds first: 3_599_999 ms is 1h, not 59m60s.
  const total = Math.round(ms / 1_000);
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  if (minutes < 60) return seconds ? `${minutes}m${seconds}s` : `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  return minutes % 60 ? `${hours}h${minutes % 60}m` : `${hours}h`;
}

/**
 * audit [-f] [--verify]: the organisation's audit log. -f follows it (polling `after=`), as
 * tail -f does; --verify checks the hash chain of every event from the first.
 */
import type { Scope } from "@kiln/core/vocabulary";
import type { Command } from "commander";
import { type CommonOptions, withCommonOptions } from "../context.ts";
import { ExitCode } from "../errors.ts";
import { examples } from "../help.ts";
import { out, printJson } from "../output.ts";
import { call, count, type ServerTarget, serverTarget } from "../server-api.ts";

interface AuditEvent {
  id: number;
  at: string;
  orgId: string;
  keyId: string | null;
  action: string;
  target: string | null;
  detail?: Record<string, unknown>;
  outcome: string;
  status: number;
  durationMs: number;
  prevHash: string;
  hash: string;
}

interface AuditFlags extends CommonOptions {
  limit?: number;
  follow?: boolean;
  interval?: number;
  verify?: boolean;
}

const AUDIT_SCOPE: Scope = "audit:read";

const page = (target: ServerTarget, query: string) =>
  call<{ events: AuditEvent[] }>(target, "GET", `/v1/audit?${query}`).then((r) => r.events);

function line(e: AuditEvent): string {
  const outcome =
    e.outcome === "ok" ? out.green(e.outcome) : e.outcome === "denied" ? out.red(e.outcome) : out.yellow(e.outcome);
  const detail = e.detail === undefined ? "" : ` ${JSON.stringify(e.detail)}`;
  return `${e.at} ${e.action} ${e.target ?? "-"} ${outcome} ${e.status} ${e.keyId ?? "-"}${detail}`;
}

export function registerAudit(program: Command): void {
  withCommonOptions(
    program
      .command("audit")
      .description(`Show the organisation's audit log (needs ${AUDIT_SCOPE}); -f follows it`)
      .option("-n, --limit <n>", "how many of the newest events (default 50)", count("--limit"))
      .option("-f, --follow", "keep printing new events as they happen")
      .option("--interval <ms>", "how often -f asks for new events (default 1000)", count("--interval"))
      .option("--verify", "check the hash chain of every event; exit 1 if it is broken")
      .addHelpText(
        "after",
        examples(
          "kiln audit",
          "kiln audit -f",
          "kiln audit --json | jq '.events[] | select(.outcome==\"denied\")'",
          "kiln audit --verify",
        ),
      ),
  ).action(async (flags: AuditFlags) => {
    const target = await serverTarget(flags, "audit");
    if (flags.verify) return verify(target, flags);
    const events = await page(target, `limit=${Math.min(flags.limit ?? 50, 1000)}`);
    if (flags.json && !flags.follow) return printJson({ events });
    const show = (e: AuditEvent) => process.stdout.write(flags.json ? `${JSON.stringify(e)}\n` : `${line(e)}\n`);
    for (const e of events) show(e);
    if (!flags.follow) return;
    let after = events.at(-1)?.id ?? 0;
    for (;;) {
      await new Promise((r) => setTimeout(r, flags.interval ?? 1000));
      for (;;) {
        const next = await page(target, `after=${after}&limit=1000`);
        for (const e of next) show(e);
        after = next.at(-1)?.id ?? after;
        if (next.length < 1000) break;
      }
    }
  });
}

async function verify(target: ServerTarget, flags: AuditFlags): Promise<void> {
  const { verifyChain, GENESIS_HASH } = await import("@kiln/server");
  let after = 0;
  let prev = GENESIS_HASH;
  let checked = 0;
  for (;;) {
    const events = await page(target, `after=${after}&limit=1000`);
    const result = verifyChain(events, prev);
    checked += result.checked;
    if (!result.ok) {
      if (flags.json) printJson({ ok: false, checked, brokenAt: result.brokenAt });
      throw new ExitCode(1, `the audit chain is broken at event ${result.brokenAt?.id}: ${result.brokenAt?.reason}`);
    }
    if (events.length === 0) break;
    prev = events.at(-1)?.hash ?? prev;
    after = events.at(-1)?.id ?? after;
    if (events.length < 1000) break;
  }
  if (flags.json) return printJson({ ok: true, checked });
  process.stdout.write(`ok: ${checked} events, the chain is intact\n`);
}

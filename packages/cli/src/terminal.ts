/**
 * This process's terminal joined to a terminal in a sandbox (a `Pty` of @kiln/core, local or
 * remote): the sandbox's output to stdout as raw bytes, keystrokes to it in raw mode (so Ctrl-C,
 * Ctrl-D and arrow keys reach the program there), the size followed on SIGWINCH, and this
 * terminal restored however it ends.
 */
import type { Pty } from "@kiln/core";

/** The size a terminal in a sandbox starts with: this one's, or 80x24 when stdout is not a terminal. */
export function terminalSize(): { cols: number; rows: number } {
  const stdout = process.stdout;
  if (stdout.isTTY && stdout.columns > 0 && stdout.rows > 0) return { cols: stdout.columns, rows: stdout.rows };
  return { cols: 80, rows: 24 };
}

export interface AttachOptions {
  /** Forward stdin (raw mode when it is a terminal). */
  input: boolean;
  /** Ends the attachment early (the program is killed): a timeout, a signal to kiln. */
  signal?: AbortSignal;
}

/**
 * Pipes the terminal until the program in the sandbox ends; resolves with its exit code (128 +
 * signal if it was killed). Aborting `signal` kills the program and resolves once it has ended.
 */
export async function attachTerminal(pty: Pty, options: AttachOptions): Promise<number> {
  const { stdin, stdout } = process;
  const raw = options.input && stdin.isTTY === true;
  const restore: (() => void)[] = [];
  const unsubscribe = pty.onData((bytes) => void stdout.write(bytes));
  restore.push(unsubscribe);
  // The terminal is given back even if this process ends without reaching `finally`.
  const onExit = () => {
    if (raw) stdin.setRawMode(false);
  };
  process.once("exit", onExit);
  restore.push(() => process.off("exit", onExit));
  try {
    if (stdout.isTTY) {
      const onResize = () => {
        const { cols, rows } = terminalSize();
        pty.resize(cols, rows).catch(() => {});
      };
      stdout.on("resize", onResize);
      restore.push(() => stdout.off("resize", onResize));
    }
    if (options.input) {
      if (raw) {
        stdin.setRawMode(true);
        restore.push(() => stdin.setRawMode(false));
      }
      const onInput = (chunk: Buffer) => {
        try {
          pty.write(chunk);
        } catch {
          // The connection closed: wait() below reports why.
        }
      };
      // Piped input (not a terminal) ends with an end-of-file, which a terminal spells Ctrl-D.
      const onEnd = () => onInput(Buffer.from([4]));
      stdin.on("data", onInput);
      stdin.once("end", onEnd);
      stdin.resume();
      restore.push(() => {
        stdin.off("data", onInput);
        stdin.off("end", onEnd);
        stdin.pause();
      });
    }
    const kill = () => void pty.kill().catch(() => {});
    if (options.signal?.aborted) kill();
    options.signal?.addEventListener("abort", kill, { once: true });
    restore.push(() => options.signal?.removeEventListener("abort", kill));
    const { exitCode } = await pty.wait();
    return exitCode;
  } finally {
    for (const undo of restore.reverse()) undo();
    pty.close();
  }
}

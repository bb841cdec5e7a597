#!/usr/bin/env node
import { EXIT_PIPE, stdoutClosed } from "./errors.ts";
import { main } from "./main.ts";

// `kiln … | head -1`: the reader went away. No stack trace; a command may clean up first.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
  if (stdoutClosed.signal.aborted) return;
  stdoutClosed.abort();
  setTimeout(() => process.exit(EXIT_PIPE), 5_000).unref();
});

const code = await main(process.argv);
if (stdoutClosed.signal.aborted) process.exit(EXIT_PIPE);
// Flush stdout (a pipe may still hold output), then exit: lingering sockets must not keep us alive.
process.stdout.write("", () => process.exit(code));

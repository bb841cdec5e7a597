#!/usr/bin/env node
import { main } from "./main.ts";

const code = await main(process.argv);
// Flush stdout (a pipe may still hold output), then exit: lingering sockets must not keep us alive.
process.stdout.write("", () => process.exit(code));

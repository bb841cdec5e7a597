// Builds the runtime image if it is missing (setup.sh step 4), showing progress.
import { Kiln } from "../packages/core/src/index.ts";

const kiln = new Kiln();
const started = performance.now();
let lastPhase = "";
const tag = await kiln.images.ensure({
  onProgress: ({ phase, message }) => {
    if (phase !== lastPhase) process.stderr.write(`\n[kiln image] ${phase}\n`);
    lastPhase = phase;
    process.stderr.write(`  ${message.slice(0, 160)}\n`);
  },
});
await kiln.close();
console.error(`[kiln image] ${tag} ready (${Math.round(performance.now() - started)} ms)`);
console.log(tag);

/**
 * `pnpm docs:build [--out DIR] [--docs DIR] [--no-typescript] [--if-changed]`: builds the site
 * (see build.ts); exits 1 naming every broken link. `--if-changed` (setup.sh) first compares the
 * stamp, loading nothing heavy, and skips an up-to-date site in well under a second.
 */
import { parseArgs } from "node:util";
import { isUpToDate, type SiteLocation } from "./stamp.ts";

const { values } = parseArgs({
  options: {
    out: { type: "string" },
    docs: { type: "string" },
    "if-changed": { type: "boolean", default: false },
    "no-typescript": { type: "boolean", default: false },
  },
});
const options: SiteLocation = {
  ...(values.out === undefined ? {} : { out: values.out }),
  ...(values.docs === undefined ? {} : { docsDir: values.docs }),
  typescript: !values["no-typescript"],
};
const started = performance.now();
if (values["if-changed"] && (await isUpToDate(options))) {
  console.log("docs site is up to date");
} else {
  try {
    const { buildSite } = await import("./build.ts");
    const r = await buildSite(options);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(
      `docs site built in ${seconds} s: ${r.out} (${r.guides.length} guides, ${r.modules.length} TypeScript modules, ` +
        `${r.operations} HTTP operations, ${r.pages} pages, ${r.links} internal links checked)`,
    );
  } catch (err) {
    console.error(
      `docs:build failed: ${(err as Error).name === "BrokenLinksError" ? (err as Error).message : (err as Error).stack}`,
    );
    process.exitCode = 1;
  }
}

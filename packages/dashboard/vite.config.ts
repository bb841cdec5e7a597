import { builtinModules } from "node:module";
import preact from "@preact/preset-vite";
import { defineConfig, type Plugin } from "vite";

const NODE_BUILTINS = new Set(builtinModules);

/**
 * The dashboard runs in a browser: importing a Node built-in (node:crypto, fs, ...) anywhere in
 * its graph, e.g. through @kiln/core's main entry instead of the browser-safe
 * @kiln/core/vocabulary, fails the build (Vite alone would only warn and leave an empty shim).
 */
export function browserOnly(): Plugin {
  return {
    name: "kiln-browser-only",
    enforce: "pre",
    resolveId(id, importer) {
      if (id.startsWith("node:") || NODE_BUILTINS.has(id.split("/")[0] ?? id)) {
        this.error(`${id} is Node-only and the dashboard runs in a browser (imported by ${importer ?? "the entry"})`);
      }
      return null;
    },
  };
}

// Static files `kiln serve` serves at /: everything bundled (no CDN), hashed names under assets/.
export default defineConfig({
  root: import.meta.dirname,
  plugins: [browserOnly(), preact()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1024 },
  server: { proxy: { "/v1": { target: "http://127.0.0.1:7420", ws: true } } },
});

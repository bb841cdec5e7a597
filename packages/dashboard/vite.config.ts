import preact from "@preact/preset-vite";
import { defineConfig } from "vite";

// Static files `kiln serve` serves at /: everything bundled (no CDN), hashed names under assets/.
export default defineConfig({
  root: import.meta.dirname,
  plugins: [preact()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1024 },
  server: { proxy: { "/v1": { target: "http://127.0.0.1:7420", ws: true } } },
});

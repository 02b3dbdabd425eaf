// Builds the web phone panel: bundles src/ with esbuild into dist/ (no CDN at run time).
import { build } from "esbuild";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "src");
const dist = join(here, "dist");

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
await build({
  entryPoints: { app: join(src, "main.js"), recording: join(src, "recording.js") },
  outdir: dist,
  bundle: true,
  splitting: true, // the ACS Calling SDK is a chunk loaded only when the device is ACS
  format: "esm",
  target: ["chrome110", "edge110"],
  minify: true,
  sourcemap: false,
  chunkNames: "chunks/[name]-[hash]",
  legalComments: "linked",
  logLevel: "warning",
});
for (const file of ["index.html", "recording.html", "redirect.html", "styles.css", "favicon.svg"]) {
  cpSync(join(src, file), join(dist, file));
}
console.log(`panel built in ${dist}`);

#!/usr/bin/env bash
# Vendor JsSIP (the web softphone's SIP stack) as one static browser file, so that the portal
# loads it from our own /static/ at run time (no CDN) and CI needs no npm.
#
# The npm package ships JsSIP's CommonJS sources (lib/) and not its browser build, so this
# fetches the pinned package with npm (which checks the tarball against the registry's
# integrity), checks that integrity against the one pinned here as well, and bundles lib/JsSIP.js
# with esbuild exactly as JsSIP's own `npm run build` makes dist/jssip.min.js (an IIFE defining
# the global JsSIP, ES2015, minified). Its dependencies are pinned too (BUNDLED below), so a
# rebuild gives the same bytes. The result, JsSIP's licence, the licences of the libraries
# bundled into it (BUNDLED-LICENSES) and a VERSION file (the versions, each tarball's integrity
# and the sha256 of the file) go to static/vendor/jssip/.
#
# To update: set JSSIP_VERSION and JSSIP_INTEGRITY (`npm view jssip@<v> dist.integrity`),
# ESBUILD_VERSION (the esbuild JsSIP's package.json asks for) and BUNDLED; run this; read the
# diff of static/vendor/jssip/VERSION; run the softphone's browser tests
# (tests/e2e/test_softphone*.py); commit static/vendor/jssip/.
set -euo pipefail
cd "$(dirname "$0")/.."

JSSIP_VERSION=3.13.8
JSSIP_INTEGRITY="sha512-ErxEdy13vXR5izGo42fpXOU64UmC2VF7Shg4oYG7R2NzZF0FTPeYikffkIIQa9w+/11YvTlgezG1nSaycWYXPA=="
ESBUILD_VERSION=0.27.2
# JsSIP's dependencies (within the ranges its package.json asks for), bundled into the file.
BUNDLED=(debug@4.4.3 ms@2.1.3 events@3.3.0 sdp-transform@2.15.0)
OUT=static/vendor/jssip

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

say() { printf '\033[1m==>\033[0m %s\n' "$*"; }

say "fetching jssip@$JSSIP_VERSION"
(cd "$work" && npm pack --silent --json "jssip@$JSSIP_VERSION" >pack.json)
got="$(node -e 'process.stdout.write(require(process.argv[1])[0].integrity)' "$work/pack.json")"
if [ "$got" != "$JSSIP_INTEGRITY" ]; then
  echo "jssip@$JSSIP_VERSION: integrity $got, expected $JSSIP_INTEGRITY" >&2
  exit 1
fi
tarball="$work/jssip-$JSSIP_VERSION.tgz"

say "installing it with its dependencies and esbuild@$ESBUILD_VERSION"
cat >"$work/package.json" <<EOF
{"name": "pbx-vendor-jssip", "private": true, "version": "0.0.0"}
EOF
(cd "$work" && npm install --silent --no-audit --no-fund --ignore-scripts \
  "$tarball" "${BUNDLED[@]}" "esbuild@$ESBUILD_VERSION")

say "bundling the browser build"
cat >"$work/build.mjs" <<'EOF'
import esbuild from "esbuild";
import fs from "node:fs";

const pkg = JSON.parse(fs.readFileSync("node_modules/jssip/package.json", "utf8"));
await esbuild.build({
  entryPoints: ["node_modules/jssip/lib/JsSIP.js"],
  outfile: "dist/jssip.min.js",
  bundle: true,
  minify: true,
  sourcemap: false,
  format: "iife",
  globalName: "JsSIP",
  platform: "browser",
  target: ["es2015"],
  supported: { "template-literal": false },
  // JsSIP's own banner, less its build year (so that a rebuild gives the same bytes).
  banner: {
    js: `/*
 * JsSIP ${pkg.version}
 * ${pkg.description}
 * Copyright: 2012 ${pkg.contributors.join(" ")}
 * Homepage: ${pkg.homepage}
 * License: ${pkg.license} (LICENSE.md beside this file)
 */`,
  },
  legalComments: "none",
});
EOF
(cd "$work" && node build.mjs)

mkdir -p "$OUT"
cp "$work/dist/jssip.min.js" "$OUT/jssip.min.js"
cp "$work/node_modules/jssip/LICENSE.md" "$OUT/LICENSE.md"
# The libraries bundled into it (debug, ms, events, sdp-transform) and their licences.
(cd "$work" && node -e '
const fs = require("fs");
for (const name of fs.readdirSync("node_modules").sort()) {
  if (name === "jssip" || name === "esbuild" || name.startsWith(".") || name.startsWith("@")) continue;
  const dir = `node_modules/${name}`;
  const file = fs.readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  if (!file) throw new Error(`${name}: no licence file`);
  const version = require(`./${dir}/package.json`).version;
  process.stdout.write(`=== ${name} ${version} (bundled into jssip.min.js)\n\n`);
  process.stdout.write(fs.readFileSync(`${dir}/${file}`, "utf8").trim() + "\n\n");
}') >"$OUT/BUNDLED-LICENSES"
deps="$(cd "$work" && node -e '
const lock = require("./package-lock.json").packages;
for (const [p, v] of Object.entries(lock)) {
  const name = p.replace(/^.*node_modules\//, "");
  if (p.startsWith("node_modules/") && !name.startsWith("@esbuild/") && name !== "esbuild")
    console.log(`  ${name}@${v.version} ${v.integrity}`);
}')"
{
  echo "# Made by scripts/vendor-jssip.sh; do not edit by hand."
  echo "jssip $JSSIP_VERSION $JSSIP_INTEGRITY"
  echo "bundled with esbuild $ESBUILD_VERSION, from (npm's integrity of each tarball):"
  echo "$deps"
  echo "sha256 $(sha256sum "$OUT/jssip.min.js" | cut -d' ' -f1)  jssip.min.js"
} >"$OUT/VERSION"
say "done: $OUT"
cat "$OUT/VERSION"

#!/usr/bin/env node
// A tiny `solc` command-line stand-in over solc-js, for py-solc-x's compile_standard.
// It understands only what py-solc-x sends: `--version`, and `--standard-json` with the input on
// stdin. Other flags (`--allow-paths`, `--base-path`) are accepted and ignored: imports are
// resolved here, from the project's contracts/ and node_modules/ only. Unlike the `solcjs`
// binary, nothing but the JSON output is printed on stdout (no `>>>` chatter line).
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const solc = require(path.join(root, "node_modules", "solc"));

const args = process.argv.slice(2);
if (args.includes("--version")) {
  process.stdout.write("solc, the solidity compiler commandline interface\nVersion: " + solc.version() + "\n");
  process.exit(0);
}
if (!args.includes("--standard-json")) {
  process.stderr.write("unrecognised option '" + (args[0] || "") + "'\n");
  process.exit(1);
}

const searchRoots = [root, path.join(root, "node_modules")];
function findImports(importPath) {
  for (const base of searchRoots) {
    const candidate = path.resolve(base, importPath);
    if (!candidate.startsWith(base + path.sep)) continue; // no escaping the search roots
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
  }
  return { error: "File not found: " + importPath };
}

const input = fs.readFileSync(0, "utf8");
process.stdout.write(solc.compile(input, { import: findImports }));

#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm install` (root `prepare` runs `tsc -b`).
import { main } from '../dist/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`stickmesh: ${err && err.message ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);

#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm install` (root `prepare` runs `tsc -b`).
// A node (`start`) caps V8's young generation before its modules load (dist/young-gen.js says
// why and how to override), so the CLI is imported after that.
const args = process.argv.slice(2);
if (args[0] === 'start') {
  const { capYoungGen } = await import('../dist/young-gen.js');
  capYoungGen();
}
const { main } = await import('../dist/main.js');

main(args).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`stickmesh: ${err && err.message ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);

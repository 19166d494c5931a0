/**
 * The young generation (V8's new space) of a running node.
 *
 * Node lets each of the two semi-spaces grow from 1 MiB to 16 MiB (32 MiB of new space, 8 MiB
 * already while loading the modules at start). A node's requests leave little alive at each
 * scavenge, so a 1 MiB semi-space costs about 1% of CPU per request in mode http and tcp (same-core
 * A/B, docs/BENCHMARKS.md#memory) and keeps 20-30 MiB out of the resident set under load, with an
 * access-log line per request too (the request line is encoded into the log buffer without
 * garbage: capped or not, logging cost the same in a same-core A/B).
 *
 * How: `--max-semi-space-size` only counts when the process starts, and every launch line (the
 * Dockerfile, the systemd unit, the demo, users' own) runs `node .../stickmesh.js start`. V8 reads
 * `--semi-space-growth-factor` each time it grows the new space, so the launcher sets it to 1
 * before loading anything (the new space stays at its initial 1 MiB semi-spaces). Setting the flag on the node
 * command line does not have this effect; setting it at run time does (v8.setFlagsFromString).
 *
 * Override: any semi-space flag of the user's (`NODE_OPTIONS=--max-semi-space-size=16`, or on the
 * node command line) wins: the node then leaves V8's young generation alone.
 */
import v8 from 'node:v8';

/** The V8 flags that size the young generation; a user who sets one of them decides. */
const USER_FLAGS = /--(max|min)[-_]semi[-_]space[-_]size|--semi[-_]space[-_]growth[-_]factor/;

/** Whether the user sized the young generation (node command line or NODE_OPTIONS). */
export function userSizesYoungGen(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return execArgv.some((a) => USER_FLAGS.test(a)) || USER_FLAGS.test(nodeOptions ?? '');
}

/**
 * Keeps the new space at its initial size (1 MiB semi-spaces) from here on, unless the user sized
 * it. Returns whether it did. Call before loading the node's modules: what grows while loading
 * stays committed.
 */
export function capYoungGen(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS): boolean {
  if (userSizesYoungGen(execArgv, nodeOptions)) return false;
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}


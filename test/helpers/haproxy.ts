import { spawnSync } from 'node:child_process';

/**
 * Fails the calling test when the Debian `haproxy` binary is missing. `npm test` installs it first
 * (scripts/ensure-test-deps.mjs), so a comparison with HAProxy never silently turns into a skip.
 */
export function requireHaproxy(): void {
  const r = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  if (r.error) throw new Error(`haproxy is not on PATH (${r.error.message}): install it with apt-get install -y haproxy, or run npm test, which does`);
}

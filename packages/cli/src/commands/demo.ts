/**
 * `stickmesh demo` (what `npm start` runs): two demo backends and one node with cookie
 * persistence, all in this process, plus instructions to try it.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDemoBackend } from './demo-backend.js';
import { runStart } from './start.js';
import { parseOptions } from './args.js';

export const DEMO_HELP = `Usage: stickmesh demo

Start a local demo: web1 on 127.0.0.1:9001, web2 on 127.0.0.1:9002, and a stickmesh node on
http://127.0.0.1:8080 using examples/demo.cfg (cookie SERVER insert indirect nocache).
Stop it with Ctrl-C.
`;

export async function runDemo(argv: string[]): Promise<number> {
  const { values, ok } = parseOptions(argv, { help: { type: 'boolean', short: 'h' } }, DEMO_HELP);
  if (!ok) return 2;
  if (values.help) {
    process.stdout.write(DEMO_HELP);
    return 0;
  }
  const cfg = fileURLToPath(new URL('../../../../examples/demo.cfg', import.meta.url));
  const backends = [];
  try {
    backends.push(await startDemoBackend('web1', '127.0.0.1', 9001));
    backends.push(await startDemoBackend('web2', '127.0.0.1', 9002));
  } catch (err) {
    process.stderr.write(`demo: cannot start demo backends on 127.0.0.1:9001/9002: ${(err as Error).message}\n`);
    for (const b of backends) b.close();
    return 1;
  }
  process.stdout.write(
    [
      '',
      'stickmesh demo',
      '  backends: web1 http://127.0.0.1:9001  web2 http://127.0.0.1:9002',
      '  node:     http://127.0.0.1:8080   (config ' + path.relative(process.cwd(), cfg) + ')',
      '  admin:    http://127.0.0.1:9100/ready',
      '',
      'Try it (a cookie jar keeps you on one server; without it you alternate):',
      '  curl -s -c /tmp/sm.jar -b /tmp/sm.jar http://127.0.0.1:8080/    # repeat: same server, visit count grows',
      '  curl -s http://127.0.0.1:8080/                                    # no cookie: round robin',
      '  curl -si http://127.0.0.1:8080/ | grep -i set-cookie             # SERVER=web1; path=/',
      '',
      'Request logs follow as JSON lines (termination_state --NI = new client got a cookie, --VN = valid cookie).',
      'Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
  const code = await runStart(['--config', cfg, '--node', 'demo']);
  for (const b of backends) b.close();
  return code;
}

/**
 * A tiny demo web application: answers with its own name and a per-client visit counter kept in
 * its memory (exactly the kind of server-side session sticky sessions exist for).
 * Bound: at most 10,000 sessions are remembered; beyond that the oldest is forgotten.
 */
import http from 'node:http';

const MAX_SESSIONS = 10000;

export function startDemoBackend(name: string, host: string, port: number): Promise<http.Server> {
  const sessions = new Map<string, number>();
  let nextId = 1;
  const server = http.createServer((req, res) => {
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    const m = /(?:^|;\s*)app_session=([^;]+)/.exec(req.headers.cookie ?? '');
    let sid = m?.[1];
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'text/plain', 'x-served-by': name };
    if (!sid || !sessions.has(sid)) {
      sid = `${name}-${nextId++}`;
      headers['set-cookie'] = `app_session=${sid}; path=/`;
    }
    const visits = (sessions.get(sid) ?? 0) + 1;
    sessions.delete(sid);
    sessions.set(sid, visits);
    if (sessions.size > MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string);
    res.writeHead(200, headers).end(`served by ${name}; session ${sid}; visit ${visits}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

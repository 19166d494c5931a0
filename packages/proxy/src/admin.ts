/**
 * Admin HTTP listener (default 127.0.0.1 only): `/healthz` answers while the process serves,
 * `/ready` answers 200 once the node is ready to take traffic (503 before). Requests other than
 * GET/HEAD on known paths get 404/405; bodies are never read.
 */
import http from 'node:http';

export interface AdminOptions {
  host: string;
  port: number;
  /** Returns [ready, reason]. */
  readiness: () => { ready: boolean; reason: string };
  /** Read-only JSON endpoints by path (e.g. `/tables`, `/peers`), computed on request. */
  routes?: Record<string, () => unknown>;
}

export class AdminServer {
  private readonly server: http.Server;
  private readonly opts: AdminOptions;

  constructor(opts: AdminOptions) {
    this.opts = opts;
    this.server = http.createServer(this.onRequest);
    this.server.maxHeadersCount = 50;
    this.server.headersTimeout = 5000;
    this.server.requestTimeout = 10000;
  }

  private readonly onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/ready') {
      const r = this.opts.readiness();
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(r) + '\n');
      return;
    }
    const route = path !== undefined ? this.opts.routes?.[path] : undefined;
    if (route) {
      let body: string;
      try {
        body = JSON.stringify(route()) + '\n';
      } catch (err) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  };

  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.opts.host, port: this.opts.port }, () => resolve());
    });
    const a = this.server.address();
    return typeof a === 'object' && a ? { host: a.address, port: a.port } : { host: this.opts.host, port: this.opts.port };
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections();
  }
}

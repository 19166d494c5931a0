/**
 * Talking to a test node's admin listener: the JSON API with a bearer token, the CLI binary pointed
 * at the node, and clearing a table on every node.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BIN, type ClusterNode } from './cluster.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);

export interface ApiAnswer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** One admin API call; `token` null sends none. The body is JSON when it looks like JSON, else text. */
export async function adminCall(n: ClusterNode, token: string | null, method: string, p: string, body?: unknown): Promise<ApiAnswer> {
  const r = await fetch(`http://127.0.0.1:${n.adminPort}${p}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, json: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text };
}

/** Runs the stickmesh CLI against `n`'s admin listener with `token`; never throws on a non-zero exit. */
export async function runCli(n: ClusterNode, token: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args, '--admin', `http://127.0.0.1:${n.adminPort}`], { env: { ...process.env, STICKMESH_ADMIN_TOKEN: token } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/**
 * Clears `table` through the first node once writes in flight have replicated (300 ms), and waits
 * until every node shows it empty.
 */
export async function clearEverywhere(nodes: ClusterNode[], token: string, table: string): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  await adminCall(nodes[0]!, token, 'DELETE', `/api/tables/${encodeURIComponent(table)}/entries`);
  for (const n of nodes) {
    await waitFor(async () => (await adminCall(n, token, 'GET', '/api/tables')).json.find((t: { id: string }) => t.id === table)?.live === 0, 5000, `${n.name} empty`);
  }
}

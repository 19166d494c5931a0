/**
 * Operator commands over a node's admin API: `table show|counters|clear`, `server show|set`, `peers`,
 * `explain KEY`. Human-readable tables by default, the API's JSON with `--json`. Exit 0 on success,
 * 1 when the node answers an error (its message is printed) or cannot be reached, 2 on bad usage.
 */
import { didYouMean, parseTime } from '@stickmesh/core';
import { AdminCallError, AdminClient } from '../admin/client.js';
import { ADMIN_OPTIONS, CONFIG_OPTION, adminClientFor, parseCommand, type OptionValues } from './args.js';

const COMMON = `Common options:
  -c, --config FILE   the cluster's config (default $STICKMESH_CONFIG): ask the admin listener of
                      each node of its peers sections in turn, until one answers
      --admin URL     ask this admin listener only (default $STICKMESH_ADMIN); wins over --config
      --token TOKEN   bearer token (default $STICKMESH_ADMIN_TOKEN, else the config's admin-token)
      --json          print the API's JSON instead of a table
  -h, --help          show this help

Without --admin or --config: the nodes of a running 'stickmesh demo' (npm start), else
http://127.0.0.1:9100. When a node other than the first answers, one line on stderr says which.
`;

export const TABLE_HELP = `Usage: stickmesh table show [TABLE] [--server NAME] [--prefix P] [--limit N] [--cursor C]
       stickmesh table counters TABLE KEY
       stickmesh table clear TABLE [--key KEY]

show: without TABLE, every stick table with its size and stored counters; with TABLE, one page of its entries in
      storage order (not by age), filtered by server name or key prefix: at most --limit entries
      (default 100, max 10000). When the table holds more, the page ends with the --cursor value
      that shows the next page; a page may hold fewer than --limit entries and still go on.
counters: KEY's counters in TABLE: each node's share and the sum the rules read (in a table with
      'counters local', this node's count alone).
clear: deletes every entry of TABLE, or only KEY; deletions replicate to every peer.

${COMMON}`;

export const SERVER_HELP = `Usage: stickmesh server show
       stickmesh server set BACKEND/SERVER ready|drain|maint [--deadline TIME] [--auto-maint] [--node-only]
       stickmesh server set BACKEND/SERVER weight N [--node-only]

set: applies on every node of the cluster (replicated, kept across restarts); 'server show'
names the node that set it. --node-only: an override on this node alone (lost on its restart);
the node is the one --admin names, else the first of --config's (never another when it is down).
set drain: the server keeps serving clients bound to it (cookie or stick entry) and gets no new
ones; 'server show' reports the bindings left on the whole cluster. --auto-maint switches it to
maint when they reach zero, --deadline TIME (e.g. 30s, 10m) at the latest then.
set weight N: 0..256 (0: no new clients, as in HAProxy).

${COMMON}`;

export const PEERS_HELP = `Usage: stickmesh peers

The node's peers: session state, replication lag, unacknowledged updates, last ack, bytes,
reconnects and refused connections by reason.

${COMMON}`;

export const EXPLAIN_HELP = `Usage: stickmesh explain KEY [--backend NAME]

How a client presenting KEY (a stick key such as its address, or a persistence cookie value) is
routed: the cookie flag, each stick table's entry with its version and origin node, the health of
the server named, and which rule decides; then KEY's counters in every table storing some, per
node and summed.

${COMMON}`;

/** A command's connection to the node and whether it prints the API's JSON. */
interface Client {
  json: boolean;
  api: AdminClient;
}

/** Left-aligned columns with a header row; cells are stringified, undefined shows as '-'. */
export function formatTable(headers: string[], rows: unknown[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === undefined || c === null || c === '' ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(headers), ...cells.map(line)].join('\n') + '\n';
}

function ms(v: unknown): string {
  if (typeof v !== 'number') return '-';
  return v < 1000 ? `${Math.round(v)}ms` : `${(v / 1000).toFixed(1)}s`;
}

type Run = (c: Client, pos: string[], values: OptionValues) => Promise<number>;

/** Parses `argv` (the admin options, --json and `extra`), then runs; an AdminCallError exits 1 with its message. */
async function command(argv: string[], help: string, extra: Parameters<typeof parseCommand>[2], run: Run, oneNode?: (v: OptionValues) => boolean): Promise<number> {
  const p = parseCommand(argv, help, { ...ADMIN_OPTIONS, ...CONFIG_OPTION, json: { type: 'boolean' }, ...extra }, true);
  if (p.exit !== undefined) return p.exit;
  const api = adminClientFor(p.values, process.env, oneNode?.(p.values) ?? false);
  if (typeof api === 'number') return api;
  const c: Client = { json: p.values.json === true, api };
  try {
    return await run(c, p.positionals, p.values);
  } catch (err) {
    if (err instanceof AdminCallError) {
      process.stderr.write(`stickmesh: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

function unknownSub(cmd: string, sub: string, subs: string[]): string {
  const near = didYouMean(sub, subs);
  return `unknown ${cmd} subcommand '${sub}'${near ? `; did you mean '${near}'?` : ''}`;
}

function usage(help: string, msg: string): number {
  process.stderr.write(`stickmesh: ${msg}\n\n${help}`);
  return 2;
}

function out(c: Client, j: unknown, human: () => string): void {
  process.stdout.write(c.json ? JSON.stringify(j, null, 2) + '\n' : human());
}

const enc = encodeURIComponent;

export function runTable(argv: string[]): Promise<number> {
  return command(argv, TABLE_HELP, { server: { type: 'string' }, prefix: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' }, key: { type: 'string' } }, async (c, pos, v) => {
    const [sub, table, ...more] = pos;
    if (more.length > (sub === 'counters' ? 1 : 0)) return usage(TABLE_HELP, `unexpected argument '${more[more.length - 1]}'`);
    if (sub === 'show' && table === undefined) {
      const j = (await c.api.call('GET', '/api/tables')) as Array<Record<string, unknown>>;
      const filters = (['server', 'prefix', 'limit', 'cursor'] as const).filter((k) => typeof v[k] === 'string');
      if (filters.length > 0) {
        const names = j.map((t) => String(t.id));
        return usage(
          TABLE_HELP,
          `--${filters[0]} filters the entries of one table: name it (table show TABLE --${filters[0]} ...); ${names.length > 0 ? `tables: ${names.join(', ')}` : 'this node has no stick table'}`,
        );
      }
      out(c, j, () =>
        formatTable(
          ['TABLE', 'TYPE', 'ENTRIES', 'SIZE', 'EVICTIONS', 'EXPIRED', 'COUNTERS', 'BY SERVER'],
          j.map((t) => {
            const k = t.counters as { schema: string; mode: string; count: number } | null | undefined;
            const counters = k ? `${k.schema} (${k.mode}, ${k.count} keys)` : '';
            return [t.id, t.type, t.live, t.capacity, t.evictions, t.expired, counters, Object.entries(t.servers as Record<string, number>).map(([s, n]) => `${s}=${n}`).join(' ')];
          }),
        ),
      );
      return 0;
    }
    if (sub === 'show') {
      const q = new URLSearchParams();
      for (const k of ['server', 'prefix', 'limit', 'cursor'] as const) if (typeof v[k] === 'string') q.set(k, v[k] as string);
      const j = (await c.api.call('GET', `/api/tables/${enc(table!)}/entries${q.size ? `?${q}` : ''}`)) as { next: string | null; entries: Array<Record<string, unknown>> };
      out(c, j, () => {
        const rows = j.entries.map((e) => [e.key, e.server, e.origin, new Date((e.version as { wall: number }).wall).toISOString(), e.expiresInMs === null ? 'never' : ms(e.expiresInMs)]);
        return formatTable(['KEY', 'SERVER', 'ORIGIN', 'WRITTEN', 'EXPIRES IN'], rows) + (j.next !== null ? `next page: --cursor ${j.next}\n` : '');
      });
      return 0;
    }
    if (sub === 'counters') {
      const key = more[0] ?? (v.key as string | undefined);
      if (table === undefined || key === undefined) return usage(TABLE_HELP, 'table counters needs TABLE and KEY');
      const j = (await c.api.call('GET', `/api/tables/${enc(table)}/counters?${new URLSearchParams({ key })}`)) as CountersJson;
      out(c, j, () => countersText(j));
      return 0;
    }
    if (sub === 'clear') {
      if (table === undefined) return usage(TABLE_HELP, 'table clear needs TABLE');
      const key = v.key as string | undefined;
      const j = (await c.api.call('DELETE', `/api/tables/${enc(table)}/entries${key !== undefined ? `/${enc(key)}` : ''}`)) as { deleted: number | boolean };
      out(c, j, () =>
        key !== undefined ? (j.deleted ? `deleted ${key} from ${table} (replicated to peers)\n` : `${key}: no entry in ${table}\n`) : `deleted ${String(j.deleted)} entries from ${table} (replicated to peers)\n`,
      );
      return 0;
    }
    return usage(TABLE_HELP, sub === undefined ? 'table needs show, counters or clear' : unknownSub('table', sub, ['show', 'counters', 'clear']));
  });
}

/** When a state was set: `drain (node1, 2m ago)`, `maint (override on this node)`, or the bare state from the config. */
function setLabel(value: unknown, set: unknown): string {
  const w = set as { scope?: string; node?: string; at?: number } | undefined;
  if (w?.scope === 'node') return `${String(value)} (override on this node)`;
  if (w?.scope === 'cluster') return `${String(value)} (${String(w.node)}, ${typeof w.at === 'number' ? ago(Date.now() - w.at) : '?'})`;
  return String(value);
}

function ago(d: number): string {
  const s = Math.max(0, Math.round(d / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : s < 172800 ? `${Math.round(s / 3600)}h ago` : `${Math.round(s / 86400)}d ago`;
}

function serverRows(list: Array<Record<string, unknown>>): string {
  return formatTable(
    ['BACKEND/SERVER', 'ADDRESS', 'HEALTH', 'STATE', 'STICKY', 'CONNS', 'REQUESTS', 'ERRORS', 'WEIGHT', 'DRAIN'],
    list.map((s) => {
      const d = s.drain as Record<string, unknown> | undefined;
      const drain = d ? (d.ended ? `done (${String(d.ended)})` : `${String(d.bindings)} bindings left${d.remainingMs !== undefined ? `, ${ms(d.remainingMs)} to deadline` : ''}${d.autoMaint ? ', auto-maint' : ''}`) : '';
      return [`${String(s.backend)}/${String(s.server)}`, s.address, s.health, setLabel(s.admin, s.adminSet), s.sticky, s.activeConns, s.requests, s.errors, setLabel(s.weight, s.weightSet), drain];
    }),
  );
}

export function runServer(argv: string[]): Promise<number> {
  return command(argv, SERVER_HELP, { deadline: { type: 'string' }, 'auto-maint': { type: 'boolean' }, 'node-only': { type: 'boolean' } }, async (c, pos, v) => {
    const [sub, target, state, ...more] = pos;
    const weightArg = state === 'weight' ? more.shift() : undefined;
    if (more.length > 0) return usage(SERVER_HELP, `unexpected argument '${more[0]}'`);
    if (sub === 'show') {
      const j = (await c.api.call('GET', '/api/servers')) as Array<Record<string, unknown>>;
      out(c, j, () => serverRows(j));
      return 0;
    }
    if (sub === 'set') {
      const slash = target?.indexOf('/') ?? -1;
      if (!target || slash <= 0 || slash === target.length - 1) return usage(SERVER_HELP, 'server set needs BACKEND/SERVER');
      const body: Record<string, unknown> = v['node-only'] ? { scope: 'node' } : {};
      if (state === 'weight') {
        const w = Number(weightArg);
        if (weightArg === undefined || !/^\d+$/.test(weightArg) || w > 256) return usage(SERVER_HELP, 'weight needs an integer in 0..256');
        if (v.deadline !== undefined || v['auto-maint']) return usage(SERVER_HELP, '--deadline and --auto-maint apply to drain only');
        body.weight = w;
      } else {
        if (state !== 'ready' && state !== 'drain' && state !== 'maint') return usage(SERVER_HELP, 'state must be ready, drain, maint or weight N');
        body.state = state;
        if (typeof v.deadline === 'string') {
          const d = parseTime(v.deadline);
          if (typeof d === 'string') return usage(SERVER_HELP, `--deadline: ${d}`);
          body.deadlineMs = d;
        }
        if (v['auto-maint']) body.autoMaint = true;
      }
      const j = (await c.api.call('PUT', `/api/servers/${enc(target.slice(0, slash))}/${enc(target.slice(slash + 1))}`, body)) as Record<string, unknown>;
      out(c, j, () => serverRows([j]));
      return 0;
    }
    return usage(SERVER_HELP, sub === undefined ? 'server needs show or set' : unknownSub('server', sub, ['show', 'set']));
    // A per-node override belongs to the node asked: never passed on to another one.
  }, (v) => v['node-only'] === true);
}

/**
 * One row of `stickmesh peers`. A peer without a session shows no lag or pending count (they
 * would be the last session's, stale) and its state says since when nothing came from it.
 */
export function peerRow(p: Record<string, unknown>): unknown[] {
  const up = p.state === 'live' || p.state === 'resyncing';
  const since = typeof p.lastDataAt === 'number' ? ` (no data since ${new Date(p.lastDataAt).toTimeString().slice(0, 8)})` : '';
  return [
    p.peer,
    up ? p.state : `${String(p.state)}${since}`,
    up ? ms(p.lagMs) : '-',
    up ? p.pending : '-',
    p.lastAckAgoMs === undefined ? 'never' : `${ms(p.lastAckAgoMs)} ago`,
    p.sent,
    p.received,
    `${String(p.bytesSent)}/${String(p.bytesReceived)}`,
    p.reconnects,
    Object.entries((p.refusals as Record<string, number>) ?? {}).map(([r, n]) => `${r}=${n}`).join(' '),
    p.lastError,
  ];
}

export function runPeers(argv: string[]): Promise<number> {
  return command(argv, PEERS_HELP, {}, async (c, pos) => {
    if (pos.length > 0) return usage(PEERS_HELP, `unexpected argument '${pos[0]}'`);
    const j = (await c.api.call('GET', '/api/peers')) as Array<Record<string, unknown>>;
    out(c, j, () =>
      formatTable(
        ['PEER', 'STATE', 'LAG', 'PENDING', 'LAST ACK', 'SENT', 'RECEIVED', 'BYTES OUT/IN', 'RECONNECTS', 'REFUSED', 'LAST ERROR'],
        j.map((p) => peerRow(p)),
      ),
    );
    return 0;
  });
}

export function runExplain(argv: string[]): Promise<number> {
  return command(argv, EXPLAIN_HELP, { backend: { type: 'string' } }, async (c, pos, v) => {
    if (pos.length !== 1) return usage(EXPLAIN_HELP, 'explain needs exactly one KEY');
    const q = new URLSearchParams({ key: pos[0]! });
    if (typeof v.backend === 'string') q.set('backend', v.backend);
    const j = (await c.api.call('GET', `/api/explain?${q}`)) as { node: string; key: string; backends: Array<Record<string, unknown>>; counters?: CountersJson[] };
    out(c, j, () =>
      j.backends
        .map((b) => {
          const lines = [`backend ${String(b.backend)} (node ${j.node}): ${b.server ? `-> ${String(b.server)}` : 'no server'} decided by ${String(b.decidedBy)}`];
          const ck = b.cookie as Record<string, unknown> | undefined;
          if (ck) lines.push(`  cookie   ${String(ck.name)}=${String(ck.value)}: flag ${String(ck.flag)} (${String(ck.meaning)})`);
          for (const s of b.stick as Array<Record<string, unknown>>) {
            const ver = s.version as { wall: number; counter: number; node: string } | undefined;
            lines.push(
              `  table    ${String(s.table)}: ` +
                (s.deleted ? `deleted by ${ver!.node}` : s.found ? `${String(s.server)} (${String(s.health ?? '?')}, ${String(s.admin ?? '?')}) version ${ver!.wall}.${ver!.counter}@${ver!.node}, written ${String(s.writtenAt)}, expires in ${s.expiresInMs === null ? 'never' : ms(s.expiresInMs)}` : 'no entry'),
            );
          }
          for (const st of b.steps as string[]) lines.push(`  - ${st}`);
          return lines.join('\n');
        })
        .join('\n\n') +
        '\n' +
        (j.counters ?? []).map((k) => `\n${countersText(k)}`).join(''),
    );
    return 0;
  });
}

/** One key's counters as the API gives them (`/api/tables/:table/counters`, explain's `counters`). */
interface CountersJson {
  table: string;
  mode: string;
  key: string;
  expiresInMs: number | null;
  total: Record<string, number>;
  nodes: Array<{ node: string; values: Record<string, number> }>;
}

/** A header line, then one row per node and the sum, one column per stored counter. */
export function countersText(j: CountersJson): string {
  const names = Object.keys(j.total);
  const head = `counters ${j.table} key ${j.key} (${j.mode}${j.mode === 'local' ? ': this node only' : ''}), expires in ${j.expiresInMs === null ? 'never' : ms(j.expiresInMs)}\n`;
  const rows: unknown[][] = j.nodes.map((n) => [n.node, ...names.map((k) => n.values[k])]);
  rows.push([j.mode === 'local' ? 'value' : 'sum', ...names.map((k) => j.total[k])]);
  return head + formatTable(['NODE', ...names], rows);
}

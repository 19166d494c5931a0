/**
 * Explain: what `decide()` would do with a client, told step by step. The answer comes from the
 * very decision the data plane makes (runtime/decide.ts, with a trace), fed with the client's
 * cookie examined by the same code as a request's (`CookiePersistence.examine`), so explain and
 * the proxy cannot disagree on a server or a flag. Explaining changes nothing: no counter, no
 * balancer state, no table entry.
 */
import { CookieState, TOMBSTONE, hashAddress, type RequestCookieFlag } from '@stickmesh/core';
import type { RuntimeBackend } from './backend.js';
import type { RuntimeServer } from './server.js';
import { StickState } from './stick.js';
import { decide, type DecideStep, type DecisionOut, type RouteSource } from './decide.js';

/** What each request cookie flag means, for people reading explain's answer. */
export const COOKIE_FLAG_MEANINGS: Readonly<Record<RequestCookieFlag, string>> = {
  '-': 'no cookie persistence in this backend',
  N: 'no usable cookie (absent, or its signature does not verify): the next rule decides',
  I: 'invalid cookie: names no server of this backend',
  D: "the cookie's server is down or in maintenance: redispatched",
  V: 'valid cookie: the client goes to its server',
  E: 'expired cookie: last seen longer ago than maxidle (or in the future); ignored',
  O: 'old cookie: first issued longer ago than maxlife (or in the future); ignored',
  U: 'cookie used for an unknown reason',
};

/**
 * How `backend` routes a client whose stick key (for every match rule: address, header or cookie
 * it fetches) is `key` and who presents `cookie` as the value of the backend's persistence cookie
 * (undefined: no cookie). `nowSec` is the time `maxidle`/`maxlife` are checked against.
 */
export function explainBackend(backend: RuntimeBackend, key: string, cookie: string | undefined, nowSec: number): Record<string, unknown> {
  const src: RouteSource = {
    clientIp: key,
    localIp: key,
    requestHeader: () => key,
    requestCookie: () => key,
    sourceHash: () => hashAddress(key),
  };
  const persistence = backend.cookie;
  const cs = new CookieState();
  cs.reset(persistence !== undefined);
  if (persistence !== undefined && cookie !== undefined) persistence.examine(cookie, cs, nowSec);
  const out: DecisionOut = { decidedBy: '' };
  const trace: DecideStep[] = [];
  const chosen = decide(backend, src, persistence !== undefined ? cs : undefined, new StickState(), out, trace);
  const steps: string[] = [];
  const stick: Array<Record<string, unknown>> = [];
  let cookieJson: Record<string, unknown> | undefined;
  for (const step of trace) {
    switch (step.kind) {
      case 'cookie': {
        const name = persistence!.name;
        cookieJson = { name, value: cookie ?? '', server: step.server?.name, flag: step.flag, meaning: COOKIE_FLAG_MEANINGS[step.flag] };
        steps.push(cookieText(name, cookie, step.flag, step.server, persistence!.signer !== undefined));
        break;
      }
      case 'stick':
        stick.push(stickJson(step));
        steps.push(stickText(step, chosen, out.decidedBy));
        break;
      case 'stick-first':
        steps.push(step.server ? `no usable entry: the agreed first pick (rendezvous hash of the key) is ${step.server.name}, the same on every node` : 'no usable server: 503');
        break;
      case 'balance':
        if (step.predicted) steps.push(step.server ? `balance ${backend.cfg.balance}: the hash of ${key} chooses ${step.server.name}` : 'balance: no usable server (503)');
        else steps.push(`balance ${backend.cfg.balance} chooses per request among ${step.candidates.map((s) => s.name).join(', ') || 'no server (503)'}`);
        break;
    }
  }
  return {
    backend: backend.name,
    decidedBy: out.decidedBy,
    server: chosen?.name,
    ...(chosen ? { health: chosen.checkUp ? 'up' : 'down', admin: chosen.admin } : {}),
    ...(cookieJson ? { cookie: cookieJson } : {}),
    stick,
    steps,
  };
}

function serverState(s: RuntimeServer): string {
  return `${s.checkUp ? 'up' : 'down'}, ${s.admin}`;
}

function cookieText(name: string, raw: string | undefined, flag: RequestCookieFlag, s: RuntimeServer | undefined, signed: boolean): string {
  if (raw === undefined || raw === '') return `no cookie ${name}: flag N, the next rule decides`;
  const c = `cookie ${name}=${raw}`;
  switch (flag) {
    case 'V':
      return `${c} names ${s!.name}, which is usable (${serverState(s!)}): flag V, cookie decides`;
    case 'D':
      return `${c} names ${s!.name}, which is ${serverState(s!)}: flag D, the next rule decides`;
    case 'I':
      return `${c} names no server: flag I (invalid), ignored`;
    case 'E':
      return `${c} is past maxidle: flag E (expired), ignored`;
    case 'O':
      return `${c} is past maxlife: flag O (old), ignored`;
    default:
      return signed ? `${c} is not correctly signed with a known key: treated as no cookie (flag N)` : `${c}: flag ${flag}`;
  }
}

function stickJson(step: Extract<DecideStep, { kind: 'stick' }>): Record<string, unknown> {
  const t = step.table;
  const e = step.key === undefined ? undefined : t.get(step.key, true);
  if (!e) return { table: t.cfg.id, found: false };
  const deleted = e.server === TOMBSTONE;
  const s = step.server;
  return {
    table: t.cfg.id,
    found: !deleted,
    ...(deleted ? { deleted: true } : { server: e.server }),
    version: e.version,
    origin: e.version.node,
    writtenAt: new Date(e.version.wall).toISOString(),
    expiresInMs: e.expiresAt === 0 ? null : Math.max(0, e.expiresAt - t.now()),
    ...(s ? { health: s.checkUp ? 'up' : 'down', admin: s.admin, usable: s.usable } : {}),
  };
}

function stickText(step: Extract<DecideStep, { kind: 'stick' }>, chosen: RuntimeServer | undefined, decidedBy: string): string {
  const id = step.table.cfg.id;
  const key = step.key;
  if (key === undefined) return `stick table ${id}: the client carries no key for this rule`;
  if (step.stored === undefined) {
    const e = step.table.get(key, true);
    return e && e.server === TOMBSTONE ? `stick table ${id}: ${key} was deleted (tombstone written by ${e.version.node})` : `stick table ${id}: no entry for ${key}`;
  }
  const s = step.server;
  if (!s) return `stick table ${id}: ${key} -> ${step.stored}, a server this backend does not have: ignored`;
  if (!s.usable) return `stick table ${id}: ${key} -> ${s.name}, but it is ${serverState(s)}: the entry is ignored and overwritten after balancing`;
  const by = step.table.get(key, true)?.version.node;
  return `stick table ${id}: ${key} -> ${s.name}${by ? ` (written by ${by})` : ''}, server is ${serverState(s)}${decidedBy === 'stick' && chosen === s ? ': stick decides' : ''}`;
}

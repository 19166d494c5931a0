/**
 * Opening a frontend's listeners from its `bind` lines (listen/listener.ts does the socket work).
 */
import { StickmeshError, type FrontendConfig } from '@stickmesh/core';
import { Listener, type ConnectionHandler } from './listener.js';
import type { AcceptGate } from './gate.js';

/** What a listener needs of its frontend: where accepted sockets go. */
export interface Frontend {
  readonly onConnection: ConnectionHandler;
}

/** Binds one listener for a frontend bind (Node's descriptor only); errors name the config line. */
export async function bindOn(fe: Frontend, b: FrontendConfig['binds'][number], gate?: AcceptGate): Promise<Listener> {
  const host = b.host === '' || b.host === '*' ? undefined : b.host;
  try {
    return await Listener.bind(host, b.port, fe.onConnection, gate);
  } catch (err) {
    throw new StickmeshError('SM_BIND', `${b.loc.file}:${b.loc.line}: 'bind': cannot listen on ${b.host || '*'}:${b.port}: ${(err as Error).message}`);
  }
}

/** Opens one listener for a frontend bind with its `tune.maxaccept` descriptors. */
export async function listenOn(fe: Frontend, b: FrontendConfig['binds'][number], maxAccept: number): Promise<Listener> {
  const l = await bindOn(fe, b);
  await l.spread(maxAccept);
  return l;
}

/** A frontend as a reload's listener hand-over sees it. */
export interface ListeningFrontend extends Frontend {
  readonly cfg: Pick<FrontendConfig, 'binds' | 'mode'>;
  readonly listeners: Listener[];
}

/**
 * Reload: gives every frontend of `next` its listeners. A listener of `current` whose bind (host,
 * port, mode) is unchanged is taken over: its accept handler moves to the new frontend, so clients
 * in its backlog are not refused. Other binds get new listeners: `open` of them, or with `open`
 * (a number: `tune.maxaccept`) descriptors.
 * Answers the listeners taken over, by their new frontend; the caller closes the rest of
 * `current`'s. On error closes the listeners it opened, gives the taken-over ones back to
 * `current` and throws: nothing changed.
 */
/**
 * How a reload opens the listener of a new bind (`b`, line `index` of `fe`'s binds): with `nbthread`
 * the main thread binds and hands the socket out, a data-plane thread listens on what it was given.
 */
export type OpenListener<F> = (fe: F, b: FrontendConfig['binds'][number], index: number) => Promise<Listener>;

export async function takeOverListeners<F extends ListeningFrontend>(current: readonly F[], next: readonly F[], open: number | OpenListener<F>): Promise<Map<Listener, F>> {
  const byAddr = new Map<string, Listener>();
  for (const fe of current) {
    fe.listeners.forEach((l, i) => {
      const b = fe.cfg.binds[i];
      if (b) byAddr.set(`${b.host}|${b.port === 0 ? l.port : b.port}|${fe.cfg.mode}`, l);
    });
  }
  const keptFor = new Map<Listener, F>();
  try {
    for (const fe of next) {
      for (const [i, b] of fe.cfg.binds.entries()) {
        const old = byAddr.get(`${b.host}|${b.port}|${fe.cfg.mode}`);
        if (old && !keptFor.has(old)) {
          keptFor.set(old, fe);
          old.setHandler(fe.onConnection);
          fe.listeners.push(old);
        } else {
          fe.listeners.push(typeof open === 'number' ? await listenOn(fe, b, open) : await open(fe, b, i));
        }
      }
    }
  } catch (err) {
    for (const fe of next) for (const l of fe.listeners) if (!keptFor.has(l)) l.close();
    for (const fe of current) for (const l of fe.listeners) l.setHandler(fe.onConnection);
    throw err;
  }
  return keptFor;
}

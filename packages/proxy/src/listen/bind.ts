/**
 * Opening a frontend's listeners from its `bind` lines (listen/listener.ts does the socket work).
 */
import { StickmeshError, type FrontendConfig } from '@stickmesh/core';
import { Listener, type ConnectionHandler } from './listener.js';
import type { AcceptGate } from './gate.js';

/** What a listener needs of its frontend: where accepted sockets go. */
interface Frontend {
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

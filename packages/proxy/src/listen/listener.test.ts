import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { Listener, PAUSE_BALANCE, PAUSE_FULL } from './listener.js';
import { acceptQueue, waitFor } from '../../../../test/helpers/wait.js';
import { useScope } from '../../../../test/helpers/scope.js';

const scope = useScope();

describe('Listener pause reasons', () => {
  it('a second reason reports what the first pause did: false when a descriptor could not stop', async () => {
    const l = await Listener.bind('127.0.0.1', 0, (s) => s.destroy());
    scope.defer(() => l.close());
    // Not spread: Node's own descriptor, which cannot pause (pause.ts).
    expect(l.pause(PAUSE_BALANCE)).toBe(false);
    expect(l.pause(PAUSE_FULL)).toBe(false);
    expect(l.isPaused).toBe(true);
  });

  it('accepts again only once every reason (maxconn, thread balance) is gone', async () => {
    const accepted: net.Socket[] = [];
    const l = await Listener.bind('127.0.0.1', 0, (s) => accepted.push(s));
    scope.defer(() => l.close());
    scope.defer(() => accepted.forEach((s) => s.destroy()));
    // Only received descriptors can pause (pause.ts): spread the socket over two.
    await l.spread(2);
    expect(l.descriptors).toBe(2);
    expect(l.pause(PAUSE_BALANCE)).toBe(true);
    expect(l.pause(PAUSE_FULL)).toBe(true);
    l.resume(PAUSE_BALANCE);
    expect(l.isPaused).toBe(true);
    const c = net.connect(l.port, '127.0.0.1');
    c.on('error', () => {});
    scope.defer(() => c.destroy());
    // Still paused for maxconn: the connection waits in the kernel's queue.
    await waitFor(() => acceptQueue(l.port) === 1, 5000, 'the connection in the accept queue');
    expect(accepted).toHaveLength(0);
    l.resume(PAUSE_FULL);
    expect(l.isPaused).toBe(false);
    await waitFor(() => accepted.length === 1, 5000, 'the connection accepted');
  });
});

/**
 * The servers' admin state inside one node: kept in the snapshot (a node with no stick table
 * too) and restored on start, re-applied to the new servers of a reload, a drain deadline that
 * ends a node override, and records for servers the config does not have left alone.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { parseConfigText, type LoadedConfig } from '@stickmesh/core';
import { StickmeshNode } from '../packages/cli/src/node.js';
import { freePort } from './helpers/backends.js';
import { waitFor } from './helpers/wait.js';
import { oneThread } from './helpers/in-process.js';

const nodes: StickmeshNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop(0, false);
});

function load(dir: string, proxyPort: number, servers = ['s1', 's2']): LoadedConfig {
  const text = `
global
    admin-bind "127.0.0.1:0"
    data-dir ${dir}
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend web
    bind "127.0.0.1:${proxyPort}"
    default_backend app
backend app
${servers.map((s, i) => `    server ${s} 127.0.0.1:${9 + i}${s === 's2' ? ' disabled' : ''}`).join('\n')}
`;
  return parseConfigText(text, 'node.cfg', 'haproxy', {});
}

const server = (n: StickmeshNode, name: string) => n.proxy.backends.get('app')!.serverByName(name)!;

describe('server admin state in one node', () => {
  it('survives a restart through the snapshot (no stick table configured) and a reload', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-state-'));
    const port = await freePort();
    const logger = pino({ level: 'silent' });
    const a = await StickmeshNode.start(oneThread(load(dir, port)), { node: 'n1', logger });
    nodes.push(a);
    expect(a.tables.size).toBe(0);
    expect(server(a, 's2').admin).toBe('maint'); // config: disabled
    const st = a.serverStates.store;
    st.setState('app', 's1', { state: 'drain', autoMaint: false, by: 'n1' });
    st.setState('app', 's2', { state: 'ready', autoMaint: false });
    st.setWeight('app', 's1', 7);
    st.setState('app', 'gone', { state: 'maint', autoMaint: false });
    st.setOverride('app', 's2', { weight: 0 });
    expect(server(a, 's1').admin).toBe('drain');
    expect(server(a, 's1').weight).toBe(7);
    expect(server(a, 's2').admin).toBe('ready');
    await new Promise((r) => setImmediate(r)); // store changes rebuild the candidates at the end of the turn
    expect(a.proxy.backends.get('app')!.candidates.map((s) => s.name)).toEqual([]); // s1 drains, s2 weighs 0 here

    // Reload: new RuntimeServers get the records (and the override) before they serve.
    const before = server(a, 's1');
    // A drain of a server the config does not have yet: kept, and watched once a reload adds it.
    st.setState('app', 's4', { state: 'drain', autoMaint: false, deadline: Date.now() + 300 });
    await a.reload(load(dir, port, ['s1', 's2', 's3', 's4']));
    expect(server(a, 's4').admin).toBe('drain');
    await waitFor(() => server(a, 's4').admin === 'maint', 3000, 'the deadline of the added server');
    expect(server(a, 's1')).not.toBe(before);
    expect(server(a, 's1')).toMatchObject({ admin: 'drain', weight: 7 });
    expect(server(a, 's2')).toMatchObject({ admin: 'ready', weight: 0 });
    expect(server(a, 's3')).toMatchObject({ admin: 'ready', weight: 1 });
    expect(a.proxy.backends.get('app')!.candidates.map((s) => s.name)).toEqual(['s3']);

    await a.stop(0, true);
    nodes.splice(nodes.indexOf(a), 1);
    const b = await StickmeshNode.start(oneThread(load(dir, port)), { node: 'n1', logger });
    nodes.push(b);
    expect(server(b, 's1')).toMatchObject({ admin: 'drain', weight: 7 });
    expect(server(b, 's2')).toMatchObject({ admin: 'ready', weight: 1 }); // the override was in memory only
    expect(b.serverStates.store.state('app', 's1')).toMatchObject({ node: 'n1', value: { state: 'drain', by: 'n1' } });
    expect(b.serverStates.store.state('app', 'gone')?.value.state).toBe('maint'); // kept, unused
    expect(b.proxy.backends.get('app')!.candidates.map((s) => s.name)).toEqual(['s2']);
  });

  it('a drain restored from the snapshot is watched from the start: auto-maint ends it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-state-'));
    const port = await freePort();
    const logger = pino({ level: 'silent' });
    const a = await StickmeshNode.start(oneThread(load(dir, port)), { node: 'n1', logger });
    a.serverStates.store.setState('app', 's1', { state: 'drain', autoMaint: true, by: 'n1' });
    await a.snapshot();
    // Stopped without waiting for the watch (a kill): the snapshot holds the drain.
    a.serverStates.stop();
    await a.stop(0, false);
    const b = await StickmeshNode.start(oneThread(load(dir, port)), { node: 'n1', logger });
    nodes.push(b);
    await waitFor(() => server(b, 's1').admin === 'maint', 3000, 'the restored drain ends');
    expect(b.serverStates.store.state('app', 's1')?.value).toMatchObject({ state: 'maint', reason: 'no-bindings', by: 'n1' });
  });

  it('a drain override with a deadline ends as a maint override on this node', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-state-'));
    const logger = pino({ level: 'silent' });
    const a = await StickmeshNode.start(oneThread(load(dir, await freePort())), { node: 'n1', logger });
    nodes.push(a);
    a.serverStates.store.setOverride('app', 's1', { state: { state: 'drain', autoMaint: false, by: 'n1', deadline: Date.now() + 300 } });
    expect(server(a, 's1').admin).toBe('drain');
    await waitFor(() => server(a, 's1').admin === 'maint', 3000, 'deadline');
    expect(a.serverStates.store.override('app', 's1')?.state?.value).toMatchObject({ state: 'maint', reason: 'deadline', by: 'n1' });
    expect(a.serverStates.store.state('app', 's1')).toBeUndefined();
  });
});

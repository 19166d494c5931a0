import { describe, expect, it } from 'vitest';
import { parseConfigText } from '@stickmesh/core';
import { defaultAdminHost } from './node.js';

const peers = (bind: string) =>
  ['peers mesh', ` bind ${bind}`, ' server lb1', ' server lb2 127.0.0.2:10000', ''].join('\n');

function hostFor(bind: string): string {
  const { config } = parseConfigText(peers(bind), 'x.cfg', 'haproxy', {});
  return defaultAdminHost(config, 'lb1');
}

describe('the default admin address', () => {
  it("follows this node's peers bind when it is a loopback address", () => {
    expect(hostFor('127.0.3.1:10000')).toBe('127.0.3.1');
  });

  it('stays on 127.0.0.1 for a wildcard or a non-loopback peers bind, so no default reaches the network', () => {
    expect(hostFor(':10000')).toBe('127.0.0.1');
    expect(hostFor('0.0.0.0:10000')).toBe('127.0.0.1');
    expect(hostFor('10.0.0.5:10000')).toBe('127.0.0.1');
    expect(hostFor('192.168.1.7:10000')).toBe('127.0.0.1');
  });
});

/**
 * Starts a stickmesh proxy in-process from haproxy.cfg text, with request logs captured in memory.
 * `{{name}}` placeholders in the text are replaced from `vars` (ports chosen at run time).
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { parseConfigText, TimerWheel } from '@stickmesh/core';
import { StickmeshProxy } from '@stickmesh/proxy';
import { freePort } from './backends.js';

export interface RunningProxy {
  proxy: StickmeshProxy;
  port: number;
  logs: Array<Record<string, unknown>>;
  wheel: TimerWheel;
  close(): Promise<void>;
}

export function fill(text: string, vars: Record<string, string | number>): string {
  return text.replace(/\{\{(\w+)\}\}/g, (_m, k: string) => {
    if (!(k in vars)) throw new Error(`no value for {{${k}}}`);
    return String(vars[k]);
  });
}

export async function startProxy(cfgText: string, vars: Record<string, string | number> = {}): Promise<RunningProxy> {
  const text = fill(cfgText, { port: await freePort(), ...vars });
  const { config } = parseConfigText(text, 'test.cfg');
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  const wheel = new TimerWheel(20, 1024);
  const proxy = await StickmeshProxy.create(config, { logger, wheel });
  await proxy.listen();
  const addr = proxy.addresses()[0];
  if (!addr) throw new Error('proxy has no listener');
  return {
    proxy,
    port: addr.port,
    logs,
    wheel,
    close: async () => {
      await proxy.drain(1000);
      wheel.stop();
    },
  };
}

/** Request log lines only. */
export function requestLogs(p: RunningProxy): Array<Record<string, unknown>> {
  return p.logs.filter((l) => l.msg === 'request');
}

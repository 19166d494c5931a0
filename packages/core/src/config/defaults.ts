/**
 * Defaults shared by both front doors, chosen to match HAProxy's where HAProxy has one, so a
 * haproxy.cfg behaves the same without the values spelled out.
 */
import os from 'node:os';
import { MAX_NBTHREAD, type GlobalConfig, type ServerSettings, type Timeouts } from './model.js';

/**
 * `nbthread` when the config does not set it: the CPUs this process may run on (its affinity
 * mask, `os.availableParallelism`), at most MAX_NBTHREAD, as HAProxy does since 2.0. A node
 * pinned to one CPU (taskset, a container with one CPU) gets one thread.
 */
export function defaultNbthread(): number {
  return Math.min(MAX_NBTHREAD, Math.max(1, os.availableParallelism()));
}

export function defaultTimeouts(): Timeouts {
  return {
    connect: 5000,
    client: 50000,
    server: 50000,
    httpRequest: 10000,
    httpKeepAlive: 10000,
    tunnel: 0,
    check: 0,
    queue: 5000,
  };
}

/** HAProxy: inter 2s, rise 2, fall 3, weight 1; fastinter/downinter default to inter (0 = unset here). */
export function defaultServerSettings(): ServerSettings {
  return {
    check: false,
    weight: 1,
    backup: false,
    disabled: false,
    inter: 2000,
    fastinter: 0,
    downinter: 0,
    rise: 2,
    fall: 3,
    maxconn: 0,
  };
}

export function defaultGlobal(): GlobalConfig {
  return {
    maxconn: 100000,
    logLevel: 'info',
    admin: { host: '127.0.0.1', port: 9100 },
    dataDir: '',
    maxAccept: 16,
    nbthread: defaultNbthread(),
  };
}

/** Resolves unset (0) fastinter/downinter to inter, and unset tunnel to max(client, server). */
export function finishServerSettings<T extends ServerSettings>(s: T): T {
  if (s.fastinter === 0) s.fastinter = s.inter;
  if (s.downinter === 0) s.downinter = s.inter;
  return s;
}

export function finishTimeouts(t: Timeouts): Timeouts {
  if (t.tunnel === 0) t.tunnel = Math.max(t.client, t.server);
  return t;
}

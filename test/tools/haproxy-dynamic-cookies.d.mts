/** One measured cookie: what a real haproxy inserted for `key` and the server `address`:`port`. */
export interface DynamicCookieRow {
  key: string;
  address: string;
  port: number;
  value: string;
}

export interface CollectOptions {
  /** haproxy binary to run; defaults to `haproxy` on PATH. */
  haproxy?: string;
  /** How long to wait for haproxy to listen, in ms. */
  timeoutMs?: number;
}

/**
 * For every key × server, has a real haproxy insert its dynamic cookie and returns the rows in that
 * order. A server `port` of 0 gets a free port. Addresses must be local (127.0.0.0/8, ::1, ...).
 */
export function collect(
  keys: readonly string[],
  servers: readonly { address: string; port: number }[],
  options?: CollectOptions,
): Promise<DynamicCookieRow[]>;

/** Kills every haproxy `collect` started that is still running. */
export function stopAll(): void;

/** Resolves to a TCP port that was free on `host` a moment ago. */
export function freePort(host?: string): Promise<number>;

/** Resolves to the first line of `haproxy -v`. */
export function haproxyVersion(haproxy?: string): Promise<string>;

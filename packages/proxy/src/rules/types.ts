/**
 * Contract between the rule engine's parts: sample fetches and ACLs (rules/sample.ts, rules/acl.ts)
 * compile the config model's expressions into closures over a `SampleSource`; the actions
 * (rules/actions.ts) and the data plane (http/, tcp/) run them. Compilation happens when a config
 * is loaded or reloaded, never per request; a compiled closure allocates nothing per call unless
 * its converters build a new string.
 *
 * Samples are typed as HAProxy's: a string, an integer (number), an IP address (string in
 * canonical text), a boolean, or absent (`undefined`: the fetch found nothing). An ACL over an
 * absent sample does not match (and `-m found` tests presence).
 */
import type { AclConfig, Counters, SourceLoc } from '@stickmesh/core';

export type SampleValue = string | number | boolean | undefined;

/**
 * A stream's sticky counters: track-sc0..2 each hold at most one tracked entry. HAProxy keeps
 * the first tracking of each index for the stream; a later `track-scN` with the same N is ignored.
 */
export interface StickCounterSlot {
  counters: Counters;
  slot: number;
  /** The tracked key, for logs and `explain`. */
  key: string;
}

/**
 * What a connection exposes to fetches. HTTP request fields are valid only while the request's
 * rules run (the head parser is shared; see http/exchange.ts); `http` is undefined in TCP rules.
 */
export interface SampleSource {
  readonly clientIp: string;
  readonly clientPort: number;
  readonly localIp: string;
  readonly localPort: number;
  /** The client connection came over TLS. */
  readonly ssl: boolean;
  /** TLS server name the client sent (SNI), for `ssl_fc_sni`; undefined without TLS or without SNI. */
  readonly sni?: string;
  /** Request bytes received and not yet forwarded when the rules run, for `req.len` (and `REQ_CONTENT`); 0 when undefined. */
  readonly reqBytes?: number;
  readonly frontendName: string;
  readonly backendName: string;
  /** sc0, sc1, sc2 of this stream; entries undefined when not tracked. */
  readonly sc: (StickCounterSlot | undefined)[];
  readonly http: HttpSample | undefined;
  /** HTTP response fields, only while `http-response` rules run. */
  readonly res: HttpResponseSample | undefined;
}

export interface HttpSample {
  readonly method: string;
  /** Request target as received (origin form, or absolute form for proxies). */
  readonly target: string;
  /** Number of header lines. */
  readonly headerCount: number;
  /** Lower-case-insensitive name test and value of header line i (0 <= i < headerCount). */
  headerNameIs(i: number, lower: string): boolean;
  headerValue(i: number): string;
  headerName(i: number): string;
  /** HTTP minor version (0 or 1). */
  readonly versionMinor: number;
}

export interface HttpResponseSample {
  readonly status: number;
  readonly headerCount: number;
  headerNameIs(i: number, lower: string): boolean;
  headerValue(i: number): string;
}

/** Table lookups the fetches `src_*(T)`, `table_*(T)` and `track-sc ... table T` need, by table id or bare name. */
export interface TableResolver {
  counters(table: string): Counters | undefined;
  /** Live entries of table T (stick entries and counter keys, whichever is larger) for `table_cnt`. */
  entryCount(table: string): number;
  /** Whether table T exists (with or without counters); absent: assume it does. */
  has?(table: string): boolean;
  /** Size (maximum entries) of table T, for `table_avl`; when absent the counters' `stats.capacity` is used. */
  capacity?(table: string): number;
}

export type CompiledSample = (src: SampleSource) => SampleValue;
export type CompiledCond = (src: SampleSource) => boolean;

/** The environment a section's rules compile in. */
export interface CompileEnv {
  /** The section's named ACLs. */
  acls: ReadonlyMap<string, AclConfig>;
  tables: TableResolver;
  /** The table a `track-sc` without `table` and `sc_*`/`src_*` fetches without a table use: the section's own stick-table id, if any. */
  ownTable: string | undefined;
}

/** Thrown at compile time for what the parser let through but the runtime cannot do; carries the config location. */
export class RuleCompileError extends Error {
  readonly code = 'SM_RULE_COMPILE';
  constructor(message: string, readonly loc: SourceLoc) {
    super(`${loc.file}:${loc.line}: ${message}`);
  }
}

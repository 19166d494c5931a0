/**
 * The ticket keys of a proxy that was given no cluster key ring: one random key for the life of
 * the process, so sessions resume on this node (not on another, nor after a restart).
 */
import { randomBytes } from 'node:crypto';
import type { TicketKeys } from '@stickmesh/core';

export class LocalTicketKeys implements TicketKeys {
  private readonly key = randomBytes(48);
  private readonly keys: readonly Buffer[] = [this.key];

  current(): Buffer {
    return this.key;
  }

  byName(name: Uint8Array): Buffer | undefined {
    return name.length === 16 && this.key.subarray(0, 16).equals(name) ? this.key : undefined;
  }

  all(): readonly Buffer[] {
    return this.keys;
  }

  onChange(): () => void {
    return () => {};
  }
}

/** One per process: every frontend without a cluster ring shares it (a reload keeps sessions). */
export const localTicketKeys = new LocalTicketKeys();

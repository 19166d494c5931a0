/**
 * A userspace link between two nodes' peers ports, owned by the chaos harness: node A dials the
 * link's port instead of node B's, and the harness can cut, delay or reset the link at will.
 *
 *   cut    bytes in both directions are held (not dropped) and new connections are accepted but
 *          not connected onward, like a partition during which TCP retransmits; `heal` delivers
 *          everything held, in order. A session that notices the silence (peers heartbeat) tears
 *          its socket down itself. Held bytes are bounded: beyond `maxHeldBytes` the pair is reset.
 *   delay  every chunk is forwarded `ms` later, order preserved, in both directions.
 *   reset  destroys every connection through the link (an RST-like failure); the link stays up.
 */
import net from 'node:net';

interface Pipe {
  a: net.Socket;
  b: net.Socket | undefined;
  /** Held chunks per direction while cut or connecting. */
  heldAB: Buffer[];
  heldBA: Buffer[];
  heldBytes: number;
  dueAB: number;
  dueBA: number;
}

export class Link {
  readonly name: string;
  port = 0;
  private readonly target: { host: string; port: number };
  private server: net.Server | undefined;
  private readonly pipes = new Set<Pipe>();
  private cutNow = false;
  private delayMs = 0;
  readonly maxHeldBytes = 8 * 1024 * 1024;

  constructor(name: string, target: { host: string; port: number }) {
    this.name = name;
    this.target = target;
  }

  async listen(): Promise<void> {
    this.server = net.createServer({ allowHalfOpen: false }, (a) => this.accept(a));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  get state(): string {
    return this.cutNow ? 'cut' : this.delayMs > 0 ? `delay ${this.delayMs}ms` : 'ok';
  }

  cut(): void {
    this.cutNow = true;
  }

  delay(ms: number): void {
    this.delayMs = ms;
  }

  heal(): void {
    this.cutNow = false;
    this.delayMs = 0;
    for (const p of [...this.pipes]) {
      if (!p.b) this.connect(p);
      else this.flush(p);
    }
  }

  reset(): void {
    for (const p of [...this.pipes]) this.destroy(p);
  }

  async close(): Promise<void> {
    this.reset();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private accept(a: net.Socket): void {
    const p: Pipe = { a, b: undefined, heldAB: [], heldBA: [], heldBytes: 0, dueAB: 0, dueBA: 0 };
    this.pipes.add(p);
    a.setNoDelay(true);
    a.on('data', (c: Buffer) => this.carry(p, c, true));
    a.on('error', () => this.destroy(p));
    a.on('close', () => this.destroy(p));
    if (!this.cutNow) this.connect(p);
  }

  private connect(p: Pipe): void {
    if (p.b || !this.pipes.has(p)) return;
    const b = net.connect(this.target.port, this.target.host);
    p.b = b;
    b.setNoDelay(true);
    b.on('connect', () => this.flush(p));
    b.on('data', (c: Buffer) => this.carry(p, c, false));
    b.on('error', () => this.destroy(p));
    b.on('close', () => this.destroy(p));
  }

  /** Forwards, delays or holds one chunk. */
  private carry(p: Pipe, c: Buffer, ab: boolean): void {
    const to = ab ? p.b : p.a;
    const held = ab ? p.heldAB : p.heldBA;
    if (this.cutNow || !to || to.connecting || held.length > 0) {
      held.push(c);
      p.heldBytes += c.length;
      if (p.heldBytes > this.maxHeldBytes) this.destroy(p);
      return;
    }
    this.send(p, c, ab);
  }

  private send(p: Pipe, c: Buffer, ab: boolean): void {
    const to = ab ? p.b! : p.a;
    const now = Date.now();
    // Order preserved: a chunk is never due before the previous one of its direction, also when
    // the delay was just lifted and earlier chunks are still on their way.
    const due = Math.max(now + this.delayMs, ab ? p.dueAB : p.dueBA);
    if (due <= now) {
      to.write(c);
      return;
    }
    if (ab) p.dueAB = due;
    else p.dueBA = due;
    setTimeout(() => {
      if (!to.destroyed) to.write(c);
    }, due - now);
  }

  private flush(p: Pipe): void {
    if (this.cutNow || !p.b || p.b.connecting) return;
    for (const [held, ab] of [[p.heldAB, true], [p.heldBA, false]] as const) {
      const chunks = held.splice(0);
      for (const c of chunks) this.send(p, c, ab);
    }
    p.heldBytes = 0;
  }

  private destroy(p: Pipe): void {
    if (!this.pipes.delete(p)) return;
    p.a.destroy();
    p.b?.destroy();
  }
}

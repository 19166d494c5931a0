import { describe, expect, it } from 'vitest';
import dns from 'node:dns';
import { TimerWheel, type ResolversConfig } from '@stickmesh/core';
import { DnsResolverSection, MAX_IGNORED_NOTES, MAX_SRV_RECORDS, unusableAddress, type DnsAnswer, type DnsBackend } from './resolver.js';
import { ServerDiscovery } from './discovery.js';

const CFG: ResolversConfig = {
  name: 'test',
  nameservers: [{ name: 'ns', host: '127.0.0.1', port: 53 }],
  resolveRetries: 1,
  timeoutResolve: 1000,
  timeoutRetry: 100,
  hold: { valid: 10_000, obsolete: 0, nx: 0, timeout: 0, refused: 0, other: 0 },
  acceptedPayloadSize: 512,
  loc: { file: 't.cfg', line: 1 },
};

type Recs = Array<{ address: string; ttl: number }>;
type Srv = Array<{ name: string; port: number; priority: number; weight: number }>;

function nx(): Error {
  return Object.assign(new Error('queryA ENOTFOUND'), { code: dns.NOTFOUND });
}

/** A DnsBackend answering from tables; a name missing from both tables is NXDOMAIN. */
function fake(a: Record<string, Recs>, srv: Record<string, Srv> = {}, aaaa: Record<string, Recs> = {}): DnsBackend & { asked: string[] } {
  const asked: string[] = [];
  const nodata = () => Object.assign(new Error('ENODATA'), { code: dns.NODATA });
  return {
    asked,
    async resolve4(name) {
      asked.push(`A ${name}`);
      if (a[name]) return a[name]!;
      throw aaaa[name] ? nodata() : nx();
    },
    async resolve6(name) {
      asked.push(`AAAA ${name}`);
      if (aaaa[name]) return aaaa[name]!;
      throw a[name] ? nodata() : nx();
    },
    async resolveSrv(name) {
      asked.push(`SRV ${name}`);
      if (srv[name]) return srv[name]!;
      throw nx();
    },
  };
}

describe('unusableAddress', () => {
  it('refuses addresses no server can have and allows loopback and private ones', () => {
    for (const a of ['0.0.0.0', '0.1.2.3', '255.255.255.255', '224.0.0.1', '239.1.1.1', '240.0.0.1', '::', 'ff02::1', 'FF05::2', '::ffff:0.0.0.0', '::ffff:255.255.255.255', 'nope', '']) {
      expect(unusableAddress(a), a).toBeDefined();
    }
    for (const a of ['127.0.0.1', '10.0.0.1', '192.168.1.1', '1.2.3.4', '223.255.255.254', '::1', '2001:db8::1', 'fd00::1', '::ffff:10.0.0.1']) {
      expect(unusableAddress(a), a).toBeUndefined();
    }
  });
});

describe('DnsResolverSection answers', () => {
  it('leaves unusable A/AAAA records out and says why', async () => {
    const r = new DnsResolverSection(CFG, {
      backends: [fake({ 'x.test': [{ address: '0.0.0.0', ttl: 5 }, { address: '10.0.0.1', ttl: 5 }, { address: '255.255.255.255', ttl: 5 }] }, {}, {})],
    });
    const a = await r.resolve('x.test', 80, 1);
    expect(a.status).toBe('ok');
    expect(a.targets).toEqual([{ address: '10.0.0.1', port: 80, weight: 1 }]);
    expect(a.ignored?.count).toBe(2);
    expect(a.ignored?.notes[0]).toBe('"x.test" 0.0.0.0: this-network address (0.0.0.0/8)');
    expect(a.ignored?.notes[1]).toBe('"x.test" 255.255.255.255: reserved or broadcast address');
  });

  it('reads a TTL with the top bit set as 0: the answer is not cached', async () => {
    const b = fake({ 'x.test': [{ address: '10.0.0.1', ttl: -1 }] });
    const r = new DnsResolverSection(CFG, { backends: [b] });
    await r.resolve('x.test', 80, 1);
    await r.resolve('x.test', 80, 1);
    expect(b.asked.filter((q) => q === 'A x.test')).toHaveLength(2);
  });

  it('ignores SRV records with target "." or port 0, and duplicates; a target that does not resolve is left out', async () => {
    const b = fake(
      { 'a.test': [{ address: '10.0.0.1', ttl: 5 }], 'b.test': [{ address: '10.0.0.2', ttl: 5 }] },
      {
        '_s._tcp.test': [
          { name: '.', port: 80, priority: 0, weight: 0 },
          { name: 'a.test', port: 0, priority: 0, weight: 0 },
          { name: 'a.test', port: 8080, priority: 0, weight: 65535 },
          { name: 'a.test', port: 8080, priority: 0, weight: 65535 },
          { name: 'gone.test', port: 8080, priority: 0, weight: 1 },
          { name: 'b.test', port: 9090, priority: 0, weight: 0 },
        ],
      },
    );
    const r = new DnsResolverSection(CFG, { backends: [b] });
    const a = await r.resolve('_s._tcp.test', 80, 1);
    expect(a.status).toBe('ok');
    expect(a.targets).toEqual([
      { address: '10.0.0.1', port: 8080, weight: 256 },
      { address: '10.0.0.2', port: 9090, weight: 1 },
    ]);
    expect(a.ignored?.notes).toEqual(['SRV target "." (service not offered)', 'SRV "a.test": port 0', 'SRV target "gone.test": nx']);
    expect(b.asked.filter((q) => q === 'A a.test')).toHaveLength(1);
  });

  it('fails an SRV answer only when every target failed', async () => {
    const r = new DnsResolverSection(CFG, { backends: [fake({}, { '_s._tcp.test': [{ name: 'gone.test', port: 80, priority: 0, weight: 1 }] })] });
    expect((await r.resolve('_s._tcp.test', 80, 1)).status).toBe('nx');
  });

  it(`resolves at most ${MAX_SRV_RECORDS} SRV records and counts the rest`, async () => {
    const srv: Srv = [];
    const a: Record<string, Recs> = {};
    for (let i = 0; i < MAX_SRV_RECORDS + 30; i++) {
      srv.push({ name: `t${i}.test`, port: 1000 + i, priority: 0, weight: 1 });
      a[`t${i}.test`] = [{ address: `10.0.${i >> 8}.${i & 255}`, ttl: 5 }];
    }
    const b = fake(a, { '_s._tcp.test': srv });
    const r = new DnsResolverSection(CFG, { backends: [b] });
    const ans = await r.resolve('_s._tcp.test', 80, 1);
    expect(ans.targets).toHaveLength(MAX_SRV_RECORDS);
    expect(ans.ignored?.count).toBe(30);
    expect(ans.ignored?.notes).toHaveLength(MAX_IGNORED_NOTES);
    expect(b.asked.filter((q) => q.startsWith('A '))).toHaveLength(MAX_SRV_RECORDS);
  });
});

describe('ServerDiscovery and ignored records', () => {
  it('reports ignored records once while they stay the same, again when they change', () => {
    const wheel = new TimerWheel(50, 64);
    const logged: DnsAnswer[] = [];
    const d = new ServerDiscovery({
      name: 'be/s',
      fqdn: 'x.test',
      port: 80,
      weight: 1,
      resolver: new DnsResolverSection(CFG, { backends: [fake({})] }),
      wheel,
      slots: [{ target: undefined, obsoleteSince: 0 }],
      onChange: () => {},
      onIgnored: (a) => logged.push(a),
    });
    const bad = (note: string): DnsAnswer => ({ status: 'ok', targets: [{ address: '10.0.0.1', port: 80, weight: 1 }], detail: '', ignored: { count: 1, notes: [note] } });
    d.apply(bad('"x.test" 0.0.0.0: this-network address (0.0.0.0/8)'));
    d.apply(bad('"x.test" 0.0.0.0: this-network address (0.0.0.0/8)'));
    expect(logged).toHaveLength(1);
    d.apply(bad('"x.test" 224.0.0.1: multicast address'));
    expect(logged).toHaveLength(2);
    d.apply({ status: 'ok', targets: [], detail: '' });
    d.apply(bad('"x.test" 224.0.0.1: multicast address'));
    expect(logged).toHaveLength(3);
    expect(d.slots).toHaveLength(1);
  });
});

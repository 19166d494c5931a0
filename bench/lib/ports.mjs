// Ports for the servers a benchmark starts.
import fs from 'node:fs';
import net from 'node:net';

/** The kernel's ephemeral port range (outgoing connections take their local port from it). */
function ephemeralRange() {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo && hi) return [lo, hi];
  } catch {
    /* not Linux: assume the IANA range */
  }
  return [49152, 65535];
}

function canListen(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

const handedOut = new Set();

/**
 * A port on 127.0.0.1 that was free a moment ago and was not handed out before by this process.
 * It is picked below the ephemeral range: a port bind(0) returns can become the local port of an
 * outgoing connection before the server that was meant to listen there binds it (the failover
 * bench opens thousands of client connections; one run failed with EADDRINUSE that way).
 */
export async function freePort() {
  const [lo] = ephemeralRange();
  const span = Math.min(12000, lo - 1025);
  for (let i = 0; span > 0 && i < 200; i++) {
    const p = lo - 1 - Math.floor(Math.random() * span);
    if (handedOut.has(p)) continue;
    if (await canListen(p)) {
      handedOut.add(p);
      return p;
    }
  }
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', () => r()));
  const p = srv.address().port;
  await new Promise((r) => srv.close(() => r()));
  return p;
}

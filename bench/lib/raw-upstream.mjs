// Fallback upstream when nginx is unavailable: a net server answering every request head
// (`\r\n\r\n`-terminated, bodiless GETs as wrk and the health probes send) with a fixed 100-byte
// keep-alive response. Usage: node raw-upstream.mjs PORT
import net from 'node:net';

const body = 'x'.repeat(99) + '\n';
const response = Buffer.from(
  `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
);
const port = Number(process.argv[2]);

net
  .createServer((sock) => {
    let pending = '';
    sock.setNoDelay(true);
    sock.on('data', (chunk) => {
      pending += chunk.toString('latin1');
      let n = 0;
      let i;
      while ((i = pending.indexOf('\r\n\r\n')) !== -1) {
        pending = pending.slice(i + 4);
        n++;
      }
      if (n === 1) sock.write(response);
      else if (n > 1) sock.write(Buffer.concat(Array(n).fill(response)));
    });
    sock.on('error', () => {});
  })
  .listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));

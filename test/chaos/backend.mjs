// A chaos-run backend process: `node backend.mjs PORT NAME`. Answers every request 200 with
// `x-served-by: NAME` (and `/health` with `ok`) so the harness can see which server it reached.
import http from 'node:http';

const [port, name] = process.argv.slice(2);
const srv = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.url === '/health') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    res.writeHead(200, { 'content-type': 'text/plain', 'x-served-by': name }).end(name);
  });
});
srv.keepAliveTimeout = 5000;
srv.listen(Number(port), '127.0.0.1', () => process.stdout.write('listening\n'));

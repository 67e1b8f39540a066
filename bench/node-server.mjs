// Fallback benchmark server (used when nginx is not installed): node:http in its own
// process, keep-alive on (60 s, unlimited requests per connection), no logging.
//   GET /small.txt -> 'hello world\n'     GET /1mib.bin -> 1 MiB of bytes
// Listens on 127.0.0.1 on every port given as an argument (the harness gives several:
// see NEW_CONN_PORTS in server.mjs), with one handler.
import http from 'node:http';

const small = Buffer.from('hello world\n');
const large = Buffer.alloc(1024 * 1024);
for (let i = 0; i < large.length; i++) large[i] = i & 0xff;

const routes = new Map([
  ['/small.txt', { body: small, type: 'text/plain' }],
  ['/1mib.bin', { body: large, type: 'application/octet-stream' }],
]);

function handle(req, res) {
  const route = routes.get(req.url);
  if (!route || req.method !== 'GET') {
    res.writeHead(404, { 'content-length': 0 });
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': route.type, 'content-length': route.body.length });
  res.end(route.body);
}

const ports = process.argv.slice(2).map(Number);
for (const port of ports.length ? ports : [0]) {
  const server = http.createServer(handle);
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  server.requestTimeout = 0;
  server.maxRequestsPerSocket = 0;
  server.listen({ host: '127.0.0.1', port, backlog: 4096 });
}
// The harness stops us with SIGTERM; Ctrl-C reaches the harness, which then does so.
// If the harness dies without doing it, its IPC channel closes and we exit too.
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => {});
process.on('disconnect', () => process.exit(0));

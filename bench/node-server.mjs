// Fallback benchmark server (used when nginx is not installed): node:http in its own
// process, keep-alive on (60 s, unlimited requests per connection), no logging.
//   GET /small.txt -> 'hello world\n'     GET /1mib.bin -> 1 MiB of bytes
// Prints {"port": N} on stdout once it listens on 127.0.0.1.
import http from 'node:http';

const small = Buffer.from('hello world\n');
const large = Buffer.alloc(1024 * 1024);
for (let i = 0; i < large.length; i++) large[i] = i & 0xff;

const routes = new Map([
  ['/small.txt', { body: small, type: 'text/plain' }],
  ['/1mib.bin', { body: large, type: 'application/octet-stream' }],
]);

const server = http.createServer((req, res) => {
  const route = routes.get(req.url);
  if (!route || req.method !== 'GET') {
    res.writeHead(404, { 'content-length': 0 });
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': route.type, 'content-length': route.body.length });
  res.end(route.body);
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.requestTimeout = 0;
server.maxRequestsPerSocket = 0;

const port = Number(process.argv[2] ?? 0);
server.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
// The harness stops us with SIGTERM; Ctrl-C reaches the harness, which then does so.
// If the harness dies without doing it, its IPC channel closes and we exit too.
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => {});
process.on('disconnect', () => process.exit(0));

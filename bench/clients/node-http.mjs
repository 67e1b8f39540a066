// node:http client. Keep-alive: http.Agent({ keepAlive: true, maxSockets: concurrency }).
// New connection per request (--forbid-reuse): `agent: false`, which sends
// `Connection: close` and closes the socket after each response.
import http from 'node:http';
import { runClient } from './common.mjs';

runClient(async (opts) => {
  // With a finite maxSockets, Node keeps sockets alive for queued requests even when
  // keepAlive is false; `agent: false` (a one-off agent per request) really closes them.
  const agent = opts.forbidReuse ? false : new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const u = new URL(opts.url);
  const reqOpts = {
    host: u.hostname,
    port: u.port,
    path: u.pathname + u.search,
    method: 'GET',
    agent,
  };
  const get = () => new Promise((resolve, reject) => {
    const req = http.request(reqOpts, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
        resolve({ status: res.statusCode, bytes: body.length });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  return {
    worker: () => get,
    close: () => agent && agent.destroy(),
  };
});

// undici Pool client. Keep-alive: one Pool with `connections` = concurrency and
// pipelining 1. New connection per request (--forbid-reuse): `reset: true` on every
// request, which makes undici send `connection: close` and close the socket after the
// response, so each request opens a new connection.
import { runClient } from './common.mjs';

runClient(async (opts) => {
  const { Pool } = await import('undici');
  const u = new URL(opts.url);
  const pool = new Pool(u.origin, { connections: opts.concurrency, pipelining: 1 });
  const path = u.pathname + u.search;
  const reset = opts.forbidReuse;
  return {
    worker: () => async () => {
      const { statusCode, body } = await pool.request({ path, method: 'GET', reset });
      const buf = await body.arrayBuffer();
      return { status: statusCode, bytes: buf.byteLength };
    },
    close: () => pool.close(),
  };
});

// Global fetch (the undici bundled with Node), body read with arrayBuffer().
// New connection per request (--forbid-reuse): a `connection: close` request header,
// which Node's fetch accepts and honours (the socket is closed after the response).
import { runClient } from './common.mjs';

runClient(async (opts) => {
  if (typeof fetch !== 'function') throw new Error('no global fetch in this Node');
  const init = opts.forbidReuse ? { headers: { connection: 'close' } } : {};
  const url = opts.url;
  return {
    worker: () => async () => {
      const res = await fetch(url, init);
      const buf = await res.arrayBuffer();
      return { status: res.status, bytes: buf.byteLength };
    },
  };
});

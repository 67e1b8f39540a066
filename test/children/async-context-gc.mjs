// Child for easy-callbacks.test.ts, run with --expose-gc: a Multi's and a
// Poller's callbacks see the AsyncLocalStorage store their creator ran in,
// also after full GCs between the creation and the callbacks (on Node 20 and
// 22 AsyncLocalStorage follows the async context's resource object, which
// must live as long as the context). Prints one JSON object: the stores seen.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import * as http from 'node:http';
import { collect } from './gc.mjs';

const require = createRequire(import.meta.url);
const { Easy, Multi, Poller, createSocket, closeSocket, AF_INET, SOCK_STREAM, CURL_CSELECT_OUT } = require('../../dist/index.js');

const als = new AsyncLocalStorage();
const server = http.createServer((req, res) => res.end('hello'));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}/`;

// SOCKETFUNCTION and TIMERFUNCTION of a Multi made in 'creator', with GCs in between.
const multi = als.run('creator', () => new Multi());
const multiStores = new Set();
multi.setopt('SOCKETFUNCTION', () => {
  multiStores.add(String(als.getStore()));
});
multi.setopt('TIMERFUNCTION', () => {
  multiStores.add(String(als.getStore()));
});
await collect();
const easy = new Easy().setopt('URL', url).setopt('FORBID_REUSE', true);
// Called from inside perform() and close(), they see those callers' stores;
// from socket events and timers, the creator's.
const transfer = await als.run('caller', () => multi.perform(easy));
easy.close();
als.run('closer', () => multi.close());

// A Poller's callback, from a socket event (a socket that was never
// connected polls as writable at once).
const pollerStores = new Set();
const fd = createSocket({ family: AF_INET, socktype: SOCK_STREAM, protocol: 0 });
const poller = als.run('creator', () => new Poller(fd));
await collect();
await new Promise((resolve) => {
  poller.start(CURL_CSELECT_OUT, () => {
    pollerStores.add(String(als.getStore()));
    poller.stop();
    resolve();
  });
});
poller.close();
closeSocket(fd);
server.close();

process.stdout.write(JSON.stringify({ status: transfer.status, multi: [...multiStores], poller: [...pollerStores] }));

// Child for lifecycle.test.ts, run with --expose-gc: handles whose callbacks
// refer back to the handle itself (the usual closure) must still be collected
// once nothing else refers to them. Prints one JSON object: for each case,
// whether the handle was collected after its work was done.
import { createRequire } from 'node:module';
import * as http from 'node:http';
import { collect } from './gc.mjs';

const require = createRequire(import.meta.url);
const { Easy, Multi, Poller, closeSocket, createSocket, CURL_POLL_IN, CURL_POLL_OUT, CURL_POLL_REMOVE,
  CURL_CSELECT_IN, CURL_CSELECT_OUT, CURL_SOCKET_TIMEOUT } = require('../../dist/index.js');

const server = http.createServer((req, res) => res.end('hello'));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}/`;

// Each case makes its handle in a function of its own and returns a WeakRef
// to it plus whether the work ran. (No closure may leave a case: it would
// share the case's scope, and so keep the handle.)
const socketsToClose = [];
const cases = {
  // The control: an Easy without callbacks.
  async plainEasy(multi) {
    const easy = new Easy().setopt('URL', url);
    const transfer = await multi.perform(easy);
    return { ref: new WeakRef(easy), ran: transfer.status === 200 };
  },
  // Easy: JS WRITEFUNCTION and XFERINFOFUNCTION that use their own Easy.
  async easyCallbacks(multi) {
    const easy = new Easy().setopt('URL', url);
    let bytes = 0;
    easy.setopt('WRITEFUNCTION', (chunk) => { bytes += chunk.length; void easy; return chunk.length; });
    easy.setopt('XFERINFOFUNCTION', () => (easy ? 0 : 1));
    await multi.perform(easy);
    return { ref: new WeakRef(easy), ran: bytes === 5 };
  },
  // A closed Easy's wrapper waits for the next new Easy with the callback
  // slots it keeps emptied: it must not keep the old callbacks (and the Easy
  // they use) alive.
  async closedEasySpareWrapper(multi) {
    const easy = new Easy().setopt('URL', url);
    let bytes = 0;
    easy.setopt('WRITEFUNCTION', (chunk) => { bytes += chunk.length; void easy; return chunk.length; });
    easy.setopt('PREREQFUNCTION', () => (easy ? 0 : 1));
    await multi.perform(easy);
    easy.close();
    return { ref: new WeakRef(easy), ran: bytes === 5 };
  },
  // Easy with a CLOSESOCKETFUNCTION that uses its Easy; the connection is not
  // reused, so it is closed when the transfer ends.
  async easyCloseSocket(multi) {
    const easy = new Easy().setopt('URL', url).setopt('FORBID_REUSE', 1);
    let closed = 0;
    easy.setopt('OPENSOCKETFUNCTION', (purpose, address) => createSocket(address));
    easy.setopt('CLOSESOCKETFUNCTION', (fd) => { closed += easy ? 1 : 0; closeSocket(fd); return 0; });
    await multi.perform(easy);
    return { ref: new WeakRef(easy), ran: closed === 1 };
  },
  // The same, but the connection stays pooled after its Easy is dropped: the
  // hook must outlive the Easy, and let it go once the connection closes.
  async closeHookOutlivesEasy(multi) {
    const { ref, closes } = await (async () => {
      const easy = new Easy().setopt('URL', url);
      const closes = { count: 0 };
      easy.setopt('OPENSOCKETFUNCTION', (purpose, address) => createSocket(address));
      easy.setopt('CLOSESOCKETFUNCTION', (fd) => { closes.count += easy ? 1 : 0; closeSocket(fd); return 0; });
      await multi.perform(easy);
      return { ref: new WeakRef(easy), closes };
    })();
    await collect();
    const keptWhilePooled = ref.deref() !== undefined && closes.count === 0;
    multi.close();  // closes the pooled connection: the hook runs now
    return { ref, ran: keptWhilePooled && closes.count === 1 };
  },
  // Multi driven by hand, as in README.md: its callbacks use the Multi.
  async manualMulti() {
    const multi = new Multi({ driver: 'manual' });
    const pollers = new Map();
    let timer;
    multi.setopt('SOCKETFUNCTION', (easy, fd, what) => {
      if (what === CURL_POLL_REMOVE) { pollers.get(fd)?.close(); pollers.delete(fd); return; }
      let poller = pollers.get(fd);
      if (!poller) pollers.set(fd, (poller = new Poller(fd)));
      const events = (what & CURL_POLL_IN ? CURL_CSELECT_IN : 0) | (what & CURL_POLL_OUT ? CURL_CSELECT_OUT : 0);
      poller.start(events, (status, ready) => multi.socketAction(fd, ready));
    });
    multi.setopt('TIMERFUNCTION', (ms) => {
      clearTimeout(timer);
      if (ms >= 0) timer = setTimeout(() => multi.socketAction(CURL_SOCKET_TIMEOUT, 0), ms);
    });
    const transfer = await multi.perform(new Easy().setopt('URL', url).setopt('FORBID_REUSE', 1));
    clearTimeout(timer);
    return { ref: new WeakRef(multi), ran: transfer.status === 200 && pollers.size === 0 };
  },
  // A stopped Poller whose callback uses the Poller.
  async stoppedPoller() {
    const fd = createSocket({ family: 2, socktype: 1, protocol: 0 });
    const poller = new Poller(fd);
    poller.start(CURL_CSELECT_OUT, () => poller.stop());
    await new Promise((resolve) => setTimeout(resolve, 20));
    poller.stop();
    socketsToClose.push(fd);
    return { ref: new WeakRef(poller), ran: true };
  },
};

// A Multi per case: a connection pooled by one case is not reused by the next.
const result = {};
for (const [name, run] of Object.entries(cases)) {
  const multi = new Multi();
  const { ref, ran } = await run(multi);
  await collect();
  result[name] = { collected: ref.deref() === undefined, ran };
  multi.close();
}
for (const fd of socketsToClose) closeSocket(fd);
server.close();
process.stdout.write(`${JSON.stringify(result)}\n`);

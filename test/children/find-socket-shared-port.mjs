// Child for test/ip-policy.test.ts: run inside a fresh network namespace
// (`unshare -rn`, loopback up) whose ephemeral port range is one port, so that
// two connections to different peers get the same local address and port, as
// Linux allows. One is libcurl's (tracked by the binding, pooled in a Multi),
// the other a Node socket the binding does not track, which stands in for a
// pooled connection of libcurl's DoH lookups. Prints one JSON line with which
// socket findSocket (IpPolicy's re-check of a reused connection) returns.
import * as http from 'node:http';
import * as net from 'node:net';
import { Easy, Multi } from '../../dist/index.mjs';
import { native } from '../../dist/native.js';

function listen(server, host, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server.address().port));
  });
}

const serve = (_req, res) => res.end('ok\n');
const one = http.createServer(serve);
const port = await listen(one, '127.0.0.1', 8080); // outside the one-port ephemeral range
const two = http.createServer(serve);
await listen(two, '127.0.0.2', port); // the same port number at another address

const multi = new Multi();
const tracked = new Easy().setopt('URL', `http://127.0.0.2:${port}/`);
const status = (await multi.perform(tracked)).status; // pooled: its socket stays open
const localPort = tracked.getinfo('LOCAL_PORT');

const untracked = net.connect({ host: '127.0.0.1', port });
await new Promise((resolve, reject) => {
  untracked.once('connect', resolve);
  untracked.once('error', reject);
});
const untrackedFd = untracked._handle.fd;

const result = {
  status,
  localPort,
  untrackedLocalPort: untracked.localPort,
  untrackedFd,
  exact: native.findSocket('127.0.0.1', localPort, '127.0.0.1', port),
  trackedByItsOwn: native.findSocket('127.0.0.1', localPort, '127.0.0.2', port),
  nobody: native.findSocket('127.0.0.1', localPort, '127.0.0.3', port),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
untracked.destroy();
tracked.close();
multi.close();
one.close();
two.close();

// A tour of curl-sockets against servers this script starts on loopback:
// a pre-connected Unix-domain socket, IP blocklisting, socket tuning with fd
// accounting, and a look at libcurl's event loop. Run: npm run demo
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import {
  Easy, Multi, IpPolicy, BlockedAddressError, libcurlVersion, createSocket, closeSocket,
  setSocketOption, getSocketOption, CURL_SOCKOPT_OK, IPPROTO_TCP, TCP_NODELAY, SOL_SOCKET, SO_KEEPALIVE,
  CURL_POLL_REMOVE,
} from '../dist/index.mjs';

const handler = (req, res) => res.end(`hello from ${req.socket.localAddress ?? 'a unix socket'}\n`);
const tcp = http.createServer(handler);
await new Promise((resolve) => tcp.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${tcp.address().port}/`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'curl-sockets-demo-'));
const unixPath = path.join(dir, 'http.sock');
const unix = http.createServer(handler);
await new Promise((resolve) => unix.listen(unixPath, resolve));

console.log(`libcurl ${libcurlVersion}\n`);

// 1. Hand curl a socket you connected yourself (here: a Unix-domain socket).
if (libcurlVersion.startsWith('7.88.')) {
  console.log('1. pre-connected socket: skipped (libcurl 7.88.x cannot use pre-connected sockets)');
} else {
  const socket = net.connect(unixPath);
  await new Promise((resolve) => socket.once('connect', resolve));
  const easy = new Easy().setopt('URL', 'http://service.internal/').useConnectedSocket(socket);
  const t = await easy.perform();
  console.log(`1. pre-connected socket: ${t.status} ${t.body.toString().trim()}`);
  easy.close();
}

// 2. Block private addresses where libcurl connects (SSRF defense).
const guarded = new IpPolicy().apply(new Easy().setopt('URL', url));
try {
  await guarded.perform();
} catch (error) {
  if (error.cause instanceof BlockedAddressError) {
    console.log(`2. IpPolicy: ${error.code}, blocked ${error.cause.address} (${error.cause.reason})`);
  } else throw error;
}
guarded.close();

// 3. Tune sockets and account for every fd.
const open = new Set();
const tuned = new Easy()
  .setopt('URL', url)
  .setopt('OPENSOCKETFUNCTION', (_purpose, address) => {
    const fd = createSocket(address);
    open.add(fd);
    return fd;
  })
  .setopt('SOCKOPTFUNCTION', (fd) => {
    setSocketOption(fd, IPPROTO_TCP, TCP_NODELAY, true);
    setSocketOption(fd, SOL_SOCKET, SO_KEEPALIVE, true);
    console.log(`3. sockopt: fd ${fd} TCP_NODELAY=${getSocketOption(fd, IPPROTO_TCP, TCP_NODELAY)}`);
    return CURL_SOCKOPT_OK;
  })
  .setopt('CLOSESOCKETFUNCTION', (fd) => {
    open.delete(fd);
    closeSocket(fd);
    return 0;
  });

// 4. Watch libcurl's event loop on a Multi of your own.
const multi = new Multi()
  .setopt('SOCKETFUNCTION', (easy, fd, what) => console.log(`4. socket fd ${fd} what ${what === CURL_POLL_REMOVE ? 'REMOVE' : what} (${easy === tuned ? 'our Easy' : 'internal'})`))
  .setopt('TIMERFUNCTION', (ms) => console.log(`4. timer ${ms} ms`));
for (let i = 0; i < 3; i++) await multi.perform(tuned);
console.log(`3. three requests, one connection; open fds now: ${[...open].join(', ')}`);
tuned.close();
multi.close();
console.log(`3. after close: open fds ${open.size}`);

tcp.close();
unix.close();
fs.rmSync(dir, { recursive: true, force: true });

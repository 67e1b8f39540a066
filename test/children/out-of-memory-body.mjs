// Child for large-body.test.ts: a server announces a body of COUNT bytes and
// sends ten. After one warm-up transfer the child prints "READY <VmSize kB>"
// and waits for a line on stdin, while the parent lowers its address-space
// limit (prlimit), so that memory for those bodies cannot be had. Then it
// runs PARALLEL such transfers and prints their outcomes as JSON: the
// process must live on (an allocation failure inside libcurl's write
// callback used to end it with std::terminate).
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as net from 'node:net';

const require = createRequire(import.meta.url);
const { Easy } = require('../../dist/index.js');

const announced = Number(process.argv[2]);
const parallel = Number(process.argv[3]);

const server = net.createServer((socket) => {
  socket.on('error', () => undefined);
  socket.once('data', () => {
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${announced}\r\n\r\n0123456789`);
    setTimeout(() => socket.destroy(), 50);
  });
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}/`;
const outcome = (promise) => promise.then(() => 'ok', (error) => String(error.code));

await outcome(new Easy().setopt('URL', url).perform());
const vmSize = /VmSize:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1];
process.stdout.write(`READY ${vmSize}\n`);
await new Promise((resolve) => process.stdin.once('data', resolve));
process.stdin.destroy();

const results = await Promise.all(Array.from({ length: parallel }, () => outcome(new Easy().setopt('URL', url).perform())));
server.close();
process.stdout.write(`${JSON.stringify(results)}\n`);

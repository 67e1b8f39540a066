// Child for handshake-ack.test.ts: a minimal HTTP/1.1 server in its own
// process (so it runs while the test process is blocked) that answers each
// request with how long after accepting the connection its first bytes came:
// body "gap <ms>". Prints "PORT <n>" once listening; exits when stdin closes.
import * as net from 'node:net';

const server = net.createServer((socket) => {
  const acceptedAt = process.hrtime.bigint();
  let gapMs;
  let pending = '';
  socket.on('data', (chunk) => {
    gapMs ??= Number(process.hrtime.bigint() - acceptedAt) / 1e6;
    pending += chunk.toString('latin1');
    if (!pending.includes('\r\n\r\n')) return;
    pending = '';
    const body = `gap ${gapMs.toFixed(1)}\n`;
    socket.end(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  });
  socket.on('error', () => {});
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

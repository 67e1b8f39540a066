// Child for send-batching.test.ts: an HTTP/1.1 keep-alive server in its own
// process (so it answers while the test process is busy) that writes the
// response to a connection's first request as soon as it accepts the
// connection, before that request arrives. Later requests are answered as
// they come. Prints "PORT <n>" once listening; exits when stdin closes.
import * as net from 'node:net';

const RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\neager\n';

const server = net.createServer((socket) => {
  socket.write(RESPONSE);  // for the request that is still on its way
  let seen = 0;
  let pending = '';
  socket.on('data', (chunk) => {
    pending += chunk.toString('latin1');
    let end;
    while ((end = pending.indexOf('\r\n\r\n')) >= 0) {
      pending = pending.slice(end + 4);
      seen += 1;
      if (seen > 1) socket.write(RESPONSE);  // the first one was answered already
    }
  });
  socket.on('error', () => {});
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

/**
 * A connect that does not finish at once. On loopback a connect has usually
 * finished by the time libcurl asks to wait for it, and the binding then acts
 * on it without a trip around the event loop. These tests make the connect
 * wait for real: the server is a child process that listens with a backlog of
 * one, whose queue two filler connections fill, and that does not accept while
 * its thread is blocked. The kernel drops the transfer's SYN until then; the
 * retransmission (about 1 s later) gets through once the child accepts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CURL_POLL_OUT, CURL_POLL_REMOVE, CurlError, Easy, Multi } from '../dist/index.js';
import { listSocketFds } from './helpers/fds';
import { rejection, sleep } from './helpers/wait';

// Listens with backlog 1 (Node takes 0 as its default, 511), prints its port, blocks its thread
// for BLOCK_MS, then accepts and answers every request with "ok".
const SERVER = `
const net = require('node:net');
const blockMs = Number(process.argv[1]);
const server = net.createServer((socket) => {
  let head = '';
  socket.on('data', (chunk) => {
    head += chunk;
    if (head.includes('\\r\\n\\r\\n')) socket.end('HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok');
  });
  socket.on('error', () => {});
});
server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
  process.stdout.write(server.address().port + '\\n');
  process.stdin.once('data', () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, blockMs));
});
`;

interface SlowServer {
  port: number;
  child: ChildProcess;
}

const children: ChildProcess[] = [];
const fillers: net.Socket[] = [];

afterEach(() => {
  for (const socket of fillers.splice(0)) socket.destroy();
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

/** A listener whose accept queue is full and that accepts nothing for blockMs. */
async function startFullListener(blockMs: number): Promise<SlowServer> {
  const child = spawn(process.execPath, ['-e', SERVER, String(blockMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.once('data', (line: Buffer) => resolve(Number(line.toString().trim())));
  });
  child.stdin!.write('block\n');
  await sleep(50);  // the child is now blocked and accepts nothing
  for (let i = 0; i < 2; i++) {
    const filler = net.connect(port, '127.0.0.1');
    fillers.push(filler);
    filler.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      filler.once('connect', () => resolve());
      filler.once('error', reject);
    });
  }
  return { port, child };
}

describe('a connect that does not finish at once', () => {
  it('is watched for writability (SOCKETFUNCTION sees CURL_POLL_OUT) and the transfer completes once the peer accepts', async () => {
    const server = await startFullListener(400);
    const multi = new Multi();
    const seen: Array<[number, number]> = [];
    multi.setopt('SOCKETFUNCTION', (_easy, fd, what) => {
      seen.push([fd, what]);
    });
    const easy = new Easy();
    easy.setopt('URL', `http://127.0.0.1:${server.port}/`);
    easy.setopt('CONNECTTIMEOUT_MS', 10_000);
    let settled = false;
    const done = multi.perform(easy).finally(() => {
      settled = true;
    });
    await sleep(200);
    expect(settled).toBe(false);  // the SYN was dropped: the connect is pending
    expect(seen.length).toBeGreaterThan(0);
    const [fd, what] = seen[0]!;
    expect(what).toBe(CURL_POLL_OUT);
    expect(listSocketFds().has(fd)).toBe(true);

    const t = await done;
    expect(t.status).toBe(200);
    expect(t.info.timings.connect).toBeGreaterThan(0.3);  // the connect itself waited
    expect(t.body.toString()).toBe('ok');
    expect(seen.filter(([f]) => f === fd).at(-1)?.[1]).toBe(CURL_POLL_REMOVE);
    easy.close();
    multi.close();
  });

  it('CONNECTTIMEOUT_MS ends a pending connect with CURLE_OPERATION_TIMEDOUT; its socket is closed and the Multi goes on', async () => {
    const server = await startFullListener(5_000);
    const multi = new Multi();
    const before = new Set(listSocketFds().keys());  // after the Multi: libcurl 7.88 opens a socketpair for it
    const easy = new Easy();
    easy.setopt('URL', `http://127.0.0.1:${server.port}/`);
    easy.setopt('CONNECTTIMEOUT_MS', 250);
    const started = Date.now();
    const err = await rejection(multi.perform(easy));
    expect(err).toBeInstanceOf(CurlError);
    expect((err as CurlError).code).toBe('CURLE_OPERATION_TIMEDOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    const leaked = [...listSocketFds().keys()].filter((fd) => !before.has(fd));
    expect(leaked).toEqual([]);

    // The same Multi and Easy work against a server that accepts.
    server.child.kill('SIGKILL');
    const ready = net.createServer((s) => s.end('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n'));
    await new Promise<void>((resolve) => ready.listen(0, '127.0.0.1', resolve));
    try {
      easy.setopt('URL', `http://127.0.0.1:${(ready.address() as net.AddressInfo).port}/`);
      const t = await multi.perform(easy);
      expect(t.status).toBe(204);
    } finally {
      ready.close();
      easy.close();
      multi.close();
    }
  });
});

/**
 * The first wait of a new socket is tested with poll() before the socket is
 * registered with libuv (src/multi.cc CheckFirstWaits). Against a server in
 * this process a response can never have arrived by then (the server runs on
 * this event loop), so the other tests only see the registered path; here the
 * server is a child process, which answers while this process is still
 * sending the other requests of the same pass.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CURL_POLL_REMOVE, CURL_PREREQFUNC_OK, Easy, Multi } from '../dist/index.js';
import { native } from '../dist/native.js';
import { listSocketFds } from './helpers/fds';

// Answers every request at once with "body of <path>"; a path ending in
// /close also closes the connection after the response. /partial/<id> sends
// the headers and half the body at once and the rest 300 ms later.
const SERVER = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/partial/')) {
    const body = Buffer.from('first half of ' + req.url + ', second half');
    const cut = body.length >> 1;
    res.writeHead(200, { 'content-length': body.length });
    res.write(body.subarray(0, cut));
    setTimeout(() => res.end(body.subarray(cut)), 300);
    return;
  }
  const body = 'body of ' + req.url;
  const headers = { 'content-length': Buffer.byteLength(body) };
  if (req.url.endsWith('/close')) headers.connection = 'close';
  res.writeHead(200, headers);
  res.end(body);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;

let child: ChildProcess;
let base = '';

beforeAll(async () => {
  child = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.once('data', (line: Buffer) => resolve(Number(line.toString().trim())));
  });
  base = `http://127.0.0.1:${port}`;
});

afterAll(() => {
  child.kill('SIGKILL');
});

// PREREQFUNCTION runs just before each request is sent. Holding up each one
// for 3 ms makes a pass of several long enough for the first responses to
// arrive before their first check, however busy the machine is.
function holdUp(): number {
  const until = Date.now() + 3;
  while (Date.now() < until);
  return CURL_PREREQFUNC_OK;
}

describe('the first wait of a new socket', () => {
  it('a response that has arrived by the first check is read at once; every body is right and no socket stays open', async () => {
    const multi = new Multi();
    const sequences = new Map<number, number[]>();
    multi.setopt('SOCKETFUNCTION', (_easy, fd, what) => {
      const seen = sequences.get(fd) ?? [];
      seen.push(what);
      sequences.set(fd, seen);
      if (what === CURL_POLL_REMOVE) sequences.delete(fd);
    });
    const before = new Set(listSocketFds().keys());
    const registeredBefore = native.registeredSocketCount();
    const rounds = 3;
    const concurrency = 20;
    for (let round = 0; round < rounds; round++) {
      const paths = Array.from({ length: concurrency }, (_, i) => `/r${round}/t${i}${i % 2 === 0 ? '/close' : ''}`);
      const transfers = await Promise.all(
        paths.map(async (path) => {
          const easy = new Easy();
          easy.setopt('URL', base + path);
          easy.setopt('FORBID_REUSE', true);
          easy.setopt('TIMEOUT_MS', 5000);
          easy.setopt('PREREQFUNCTION', holdUp);
          try {
            return await multi.perform(easy);
          } finally {
            easy.close();
          }
        }),
      );
      expect(transfers.map((t) => t.body.toString())).toEqual(paths.map((p) => `body of ${p}`));
      expect(transfers.every((t) => t.status === 200 && t.info.numConnects === 1)).toBe(true);
    }
    const registered = native.registeredSocketCount() - registeredBefore;
    // Every socket that was not ready at its first check was registered;
    // some were read and closed without ever being registered.
    expect(registered).toBeLessThan(rounds * concurrency);
    expect(sequences.size).toBe(0);  // every socket ended with CURL_POLL_REMOVE
    const leaked = [...listSocketFds().keys()].filter((fd) => !before.has(fd));
    expect(leaked).toEqual([]);
    multi.close();
  });

  it('a response that has only partly arrived by the first check is read, then waited for on the event loop', async () => {
    const multi = new Multi();
    const registeredBefore = native.registeredSocketCount();
    const paths = Array.from({ length: 10 }, (_, i) => `/partial/${i}`);
    const transfers = await Promise.all(
      paths.map(async (path) => {
        const easy = new Easy();
        easy.setopt('URL', base + path);
        easy.setopt('FORBID_REUSE', true);
        easy.setopt('TIMEOUT_MS', 5000);  // a socket left unwatched fails here instead of hanging
        easy.setopt('PREREQFUNCTION', holdUp);  // the first halves arrive during the pass
        try {
          return await multi.perform(easy);
        } finally {
          easy.close();
        }
      }),
    );
    expect(transfers.map((t) => t.body.toString())).toEqual(paths.map((p) => `first half of ${p}, second half`));
    // They waited for their second halves on the event loop (each socket is
    // registered once at most; one whose whole response was in by its first
    // check, after a stall of 300 ms, would not be).
    const registered = native.registeredSocketCount() - registeredBefore;
    expect(registered).toBeGreaterThan(0);
    expect(registered).toBeLessThanOrEqual(paths.length);
    multi.close();
  });

  it('a kept-alive connection to the same peer is reused after a first-check read', async () => {
    const multi = new Multi();
    const easy = new Easy();
    try {
      const ports = new Set<number>();
      for (let i = 0; i < 5; i++) {
        easy.setopt('URL', `${base}/again/${i}`);
        const t = await multi.perform(easy);
        expect(t.body.toString()).toBe(`body of /again/${i}`);
        ports.add(t.info.localPort);
      }
      expect(ports.size).toBe(1);
    } finally {
      easy.close();
      multi.close();
    }
  });
});

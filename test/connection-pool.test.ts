/**
 * The size of a Multi's connection pool. libcurl 7.88-8.14 keeps at most 4
 * idle connections per handle added at the moment a connection goes idle;
 * perform() removes a handle as soon as its transfer ends, so the last
 * transfers of a burst would find that limit near 4 and close warm
 * connections. The binding sizes the pool by the most transfers the Multi has
 * had in flight at once instead, until the user sets MAXCONNECTS.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Easy, Multi, libcurlVersion } from '../dist/index.js';
import { startHttpServer, type TestServer } from './helpers/servers';
import { sleep, waitUntil } from './helpers/wait';

let server: TestServer;

beforeAll(async () => {
  server = await startHttpServer();
});

afterAll(async () => {
  await server.close();
});

const BURST = 12;
const LIBCURL_7 = libcurlVersion.startsWith('7.');

// BURST transfers at once whose responses arrive one after another (the
// k-th after k * stepMs), so the transfers end one by one; resolves to the
// connections libcurl opened for them.
async function staggeredBurst(multi: Multi, stepMs: number, base = server.url): Promise<number> {
  const transfers = Array.from({ length: BURST }, (_, k) => {
    const easy = new Easy().setopt('URL', `${base}/slow?ms=${k * stepMs}`);
    return multi.perform(easy).finally(() => easy.close());
  });
  let opened = 0;
  for (const t of await Promise.all(transfers)) {
    expect(t.status).toBe(200);
    opened += t.info.numConnects;
  }
  return opened;
}

describe('connection pool of a Multi', () => {
  it('after a burst whose transfers end one by one, the next burst reuses every connection', async () => {
    const multi = new Multi();
    try {
      server.resetCounters();
      expect(await staggeredBurst(multi, 15)).toBe(BURST);
      expect(server.connections).toBe(BURST);
      await sleep(50); // a connection closed at the end of the burst would be seen by now
      expect(server.openConnections()).toBe(BURST);

      server.resetCounters();
      expect(await staggeredBurst(multi, 15)).toBe(0);
      expect(server.connections).toBe(0);
      expect(server.requests).toBe(BURST);
    } finally {
      multi.close();
    }
  });

  it('a limit set with setopt(MAXCONNECTS) is kept: the pool holds that many and the rest are closed', async () => {
    const multi = new Multi().setopt('MAXCONNECTS', 2);
    try {
      server.resetCounters();
      expect(await staggeredBurst(multi, 15)).toBe(BURST);
      // libcurl closes the surplus idle connections as the transfers end.
      expect(await waitUntil(() => server.openConnections() <= 2)).toBe(true);

      server.resetCounters();
      const reopened = await staggeredBurst(multi, 15);
      expect(reopened).toBeGreaterThanOrEqual(BURST - 2);
      expect(server.connections).toBe(reopened);
    } finally {
      multi.close();
    }
  });

  it(`setopt(MAXCONNECTS, 0) hands the pool back to libcurl ${libcurlVersion}: ${LIBCURL_7 ? 'no cap' : 'its own rule, which closes connections at the end of a burst'}`, async () => {
    const multi = new Multi().setopt('MAXCONNECTS', 0);
    try {
      server.resetCounters();
      expect(await staggeredBurst(multi, 15)).toBe(BURST);
      server.resetCounters();
      const reopened = await staggeredBurst(multi, 15);
      if (LIBCURL_7) expect(reopened).toBe(0);
      else expect(reopened).toBeGreaterThan(0);
      expect(server.connections).toBe(reopened);
    } finally {
      multi.close();
    }
  });

  it('a pool sized by an earlier peak still serves one transfer at a time on one connection', async () => {
    const multi = new Multi();
    try {
      server.resetCounters();
      await staggeredBurst(multi, 5);
      const easy = new Easy().setopt('URL', `${server.url}/slow?ms=0`);
      try {
        for (let i = 0; i < 20; i++) {
          const t = await multi.perform(easy);
          expect(t.status).toBe(200);
          expect(t.info.numConnects).toBe(0);
        }
      } finally {
        easy.close();
      }
      expect(server.connections).toBe(BURST);
    } finally {
      multi.close();
    }
  });

  it('idle connections that the server closed stay in CLOSE_WAIT until the next transfer on the Multi, which closes them', async () => {
    const plain = http.createServer((req, res) => {
      const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
      setTimeout(() => res.end('ok'), ms);
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const port = (plain.address() as AddressInfo).port;
    const url = `http://127.0.0.1:${port}`;
    const multi = new Multi();
    try {
      expect(await staggeredBurst(multi, 5, url)).toBe(BURST);
      plain.closeIdleConnections();
      expect(await waitUntil(() => closeWaitTo(port) === BURST)).toBe(true);
      await sleep(100);
      expect(closeWaitTo(port)).toBe(BURST);  // libcurl has not looked at its pool

      const easy = new Easy().setopt('URL', `${url}/slow?ms=0`);
      try {
        expect((await multi.perform(easy)).info.numConnects).toBe(1);
      } finally {
        easy.close();
      }
      expect(closeWaitTo(port)).toBe(0);
    } finally {
      multi.close();
      plain.closeAllConnections();
      await new Promise((resolve) => plain.close(resolve));
    }
  });
});

// Client sockets of this process in CLOSE_WAIT towards 127.0.0.1:port (/proc/net/tcp).
function closeWaitTo(port: number): number {
  const remote = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return fs
    .readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .filter((line) => {
      const cols = line.trim().split(/\s+/);
      return cols[2] === remote && cols[3] === '08';
    }).length;
}

/**
 * How a Multi sends requests on pooled connections. While a kept-alive TCP
 * connection goes idle in libcurl's pool while other transfers are in flight,
 * the binding sets TCP_CORK on it, so the next request written on it is
 * queued; it is uncorked (and the request sent) as soon as the libcurl call
 * that wrote it returns. These tests check both halves on real sockets: the
 * cork is there while idle and gone while the next transfer runs, a corked
 * request is never left waiting for the kernel's own 200 ms flush, a
 * connection whose transfer ran alone is left uncorked, and sockets that
 * cannot be corked (Unix) work as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Easy, IPPROTO_TCP, Multi, TCP_DEFER_ACCEPT, createSocket, getSocketOption, libcurlVersion, setSocketOption } from '../dist/index.js';
import { sleepSync, startChildServer } from './helpers/child-server';
import { startHttpServer, startUnixServer, type TestServer } from './helpers/servers';

const TCP_CORK = 3; // <netinet/tcp.h>
// Pooled connections keep their poll (and so their cork) only on libcurl 8.x.
const CORKS = !libcurlVersion.startsWith('7.');

function corked(fd: number): number {
  return getSocketOption(fd, IPPROTO_TCP as number, TCP_CORK);
}

/** Performs `easy` once, noting fd's TCP_CORK each time a piece of the body arrives. */
async function performNotingCork(multi: Multi, easy: Easy, fd: number): Promise<{ status: number; corkSeen: number[] }> {
  const corkSeen: number[] = [];
  easy.setopt('WRITEFUNCTION', (chunk: Buffer) => {
    corkSeen.push(corked(fd));
    return chunk.length;
  });
  const t = await multi.perform(easy);
  return { status: t.status, corkSeen };
}

/** An Easy whose sockets are opened through createSocket, so the test knows their fds. */
function easyWithFds(url: string, fds: number[]): Easy {
  return new Easy().setopt('URL', url).setopt('OPENSOCKETFUNCTION', (_purpose, address) => {
    const fd = createSocket(address);
    fds.push(fd);
    return fd;
  });
}

describe('requests on pooled connections', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startHttpServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it('an idle kept-alive TCP connection is corked while other transfers run, and uncorked while the next transfer on it runs', async () => {
    server.resetCounters();
    const multi = new Multi();
    const fds: number[] = [];
    const easy = easyWithFds(`${server.url}/hello`, fds);
    // Closed after its transfer, so that the next one cannot take its connection instead.
    const other = new Easy().setopt('URL', `${server.url}/slow?ms=300`).setopt('FORBID_REUSE', true);
    try {
      // The slow transfer is still in flight when this one ends.
      const slow = multi.perform(other);
      const first = await multi.perform(easy);
      expect(first.status).toBe(200);
      expect(fds).toHaveLength(1);
      expect(multi.running).toBe(1);
      expect(corked(fds[0]!)).toBe(CORKS ? 1 : 0);
      expect((await slow).status).toBe(200);

      // The second response can only arrive once its request left; the cork
      // must already be off by then (the kernel's 200 ms flush would send the
      // request but leave TCP_CORK set).
      const second = await performNotingCork(multi, easy, fds[0]!);
      expect(second.status).toBe(200);
      expect(second.corkSeen.length).toBeGreaterThan(0);
      expect(second.corkSeen.every((v) => v === 0)).toBe(true);
      expect(fds).toHaveLength(1);
      expect(server.connections).toBe(2);  // this one and the slow one's
      expect(server.requests).toBe(3);
      expect(corked(fds[0]!)).toBe(0);  // its transfer ran alone this time
    } finally {
      easy.close();
      other.close();
      multi.close();
    }
  });

  it('a connection whose transfer ran alone is not corked: its next request leaves at once', async () => {
    server.resetCounters();
    const multi = new Multi();
    const fds: number[] = [];
    const easy = easyWithFds(`${server.url}/hello`, fds);
    try {
      for (let i = 0; i < 3; i++) {
        const t = await multi.perform(easy);
        expect(t.body.toString()).toBe('hello world\n');
        expect(fds).toHaveLength(1);
        expect(corked(fds[0]!)).toBe(0);
      }
      expect(server.connections).toBe(1);
      expect(server.requests).toBe(3);
    } finally {
      easy.close();
      multi.close();
    }
  });

  it('sequential requests on one pooled connection are not held back by the kernel flush', async () => {
    server.resetCounters();
    const multi = new Multi();
    const easy = new Easy().setopt('URL', `${server.url}/hello`);
    const count = 25;
    try {
      const started = process.hrtime.bigint();
      for (let i = 0; i < count; i++) {
        const t = await multi.perform(easy);
        expect(t.body.toString()).toBe('hello world\n');
      }
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      // A request left corked waits 200 ms for the kernel: 25 of them take >= 5 s.
      expect(ms).toBeLessThan(2500);
      expect(server.connections).toBe(1);
      expect(server.requests).toBe(count);
    } finally {
      easy.close();
      multi.close();
    }
  });

  it('concurrent transfers on many pooled connections all complete, again and again', async () => {
    server.resetCounters();
    const multi = new Multi();
    const easies = Array.from({ length: 20 }, () => new Easy().setopt('URL', `${server.url}/hello`));
    try {
      for (let round = 0; round < 5; round++) {
        const results = await Promise.all(easies.map((e) => multi.perform(e)));
        for (const t of results) expect(t.body.toString()).toBe('hello world\n');
      }
      expect(server.requests).toBe(100);
      // Reused (libcurl's pool shrinks as the Multi empties, so not all 20 stay).
      expect(server.connections).toBeLessThan(60);
    } finally {
      for (const e of easies) e.close();
      multi.close();
    }
  });

  it.runIf(CORKS)('a connection whose transfer ended before it ever waited on the loop is corked when idle too', async () => {
    // The response is already there when libcurl reads right after sending
    // (the server wrote it on accept, and PREREQFUNCTION holds the request
    // back until it has): the transfer ends inside libcurl's first call for
    // that socket, which is then never registered with the event loop. Its
    // idle connection must be corked like any other, or the next request on
    // it leaves on its own instead of with the others.
    const { port, child } = await startChildServer('eager-server.mjs');
    const multi = new Multi();
    const fds: number[] = [];
    let holdBack = true;
    const easy = easyWithFds(`http://127.0.0.1:${port}/`, fds)
      .setopt('PREREQFUNCTION', () => {
        if (holdBack) sleepSync(300);
        return 0;
      })
      // The server must accept while the request is held back: without this
      // the handshake's last ACK would wait for the request (or the kernel's
      // 200 ms timer), and so would the accept (test/handshake-ack.test.ts).
      .setopt('SOCKOPTFUNCTION', (fd: number) => {
        setSocketOption(fd, IPPROTO_TCP as number, TCP_DEFER_ACCEPT as number, 0);
        return 0;
      });
    // In flight meanwhile, so that there are others to send with.
    const other = new Easy().setopt('URL', `${server.url}/slow?ms=1500`);
    try {
      const slow = multi.perform(other);
      const first = await multi.perform(easy);
      expect(first.body.toString()).toBe('eager\n');
      expect(fds).toHaveLength(1);
      expect(multi.running).toBe(1);
      expect(corked(fds[0]!)).toBe(1);
      expect((await slow).status).toBe(200);

      holdBack = false;
      const second = await performNotingCork(multi, easy, fds[0]!);
      expect(second.status).toBe(200);
      expect(second.corkSeen.length).toBeGreaterThan(0);
      expect(second.corkSeen.every((v) => v === 0)).toBe(true);
      expect(fds).toHaveLength(1);  // the same connection
      expect(corked(fds[0]!)).toBe(0);  // it ran alone this time
    } finally {
      easy.close();
      other.close();
      multi.close();
      child.stdin!.end();
    }
  });

  it('a Unix-domain connection (no TCP_CORK) is reused as before', async () => {
    const unix = await startUnixServer();
    const multi = new Multi();
    const easy = new Easy().setopt('URL', 'http://localhost/hello').setopt('UNIX_SOCKET_PATH', unix.path);
    try {
      for (let i = 0; i < 3; i++) {
        const t = await multi.perform(easy);
        expect(t.body.toString()).toBe('hello world\n');
      }
      expect(unix.connections).toBe(1);
      expect(unix.requests).toBe(3);
    } finally {
      easy.close();
      multi.close();
      await unix.close();
    }
  });
});

// The socket callbacks of an Easy (OPENSOCKETFUNCTION, SOCKOPTFUNCTION,
// CLOSESOCKETFUNCTION, PREREQFUNCTION) against real loopback servers: what
// they are called with, how often, what their return values do, how faults
// surface, and that every fd opened is closed exactly once.
import * as net from 'node:net';

import { describe, it, expect } from 'vitest';

import {
  Easy,
  Multi,
  CurlError,
  createSocket,
  closeSocket,
  setSocketOption,
  getSocketOption,
  CURL_SOCKET_BAD,
  CURL_SOCKOPT_OK,
  CURL_SOCKOPT_ERROR,
  CURLSOCKTYPE_IPCXN,
  AF_INET,
  AF_INET6,
  AF_UNIX,
  SOCK_STREAM,
  SOL_SOCKET,
  IPPROTO_TCP,
  SO_KEEPALIVE,
  SO_RCVBUF,
  TCP_NODELAY,
  CURL_PREREQFUNC_OK,
  CURL_PREREQFUNC_ABORT,
  libcurlVersion,
} from '../dist/index.js';
import type { CurlSockaddr, Transfer } from '../dist/index.js';
import { startHttpServer, startUnixServer, type TestServer } from './helpers/servers';
import { listSocketFds, openFdCount, socketInode } from './helpers/fds';
import { waitFor } from './helpers/wait';

const LIBCURL_788 = libcurlVersion.startsWith('7.88.');

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/** The rejection of a promise that must reject. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** The rejection of a transfer, checked to be a CurlError. */
async function curlErrorOf(promise: Promise<unknown>): Promise<CurlError> {
  const err = await rejectionOf(promise);
  expect(err).toBeInstanceOf(CurlError);
  return err as CurlError;
}

/** Every socket inode this process holds. */
function openSocketInodes(): Set<number> {
  return new Set(listSocketFds().values());
}

/** Runs fn with a private Multi (its own connection pool), closed afterwards. */
async function withMulti<T>(fn: (multi: Multi) => Promise<T>): Promise<T> {
  const multi = new Multi();
  try {
    return await fn(multi);
  } finally {
    multi.close();
  }
}

async function withServer<T>(server: TestServer, fn: (server: TestServer) => Promise<T>): Promise<T> {
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}

interface SocketLog {
  opened: number[];
  /** socket inode of each opened fd, taken in the opensocket callback */
  inodes: number[];
  sockopt: number[];
  closed: number[];
}

/**
 * Installs an OPENSOCKETFUNCTION that creates the socket with createSocket and
 * a CLOSESOCKETFUNCTION that records and closes it; optionally a SOCKOPTFUNCTION.
 */
function trackSockets(easy: Easy, opts: { sockopt?: (fd: number) => number } = {}): SocketLog {
  const log: SocketLog = { opened: [], inodes: [], sockopt: [], closed: [] };
  easy.setopt('OPENSOCKETFUNCTION', (_purpose, address) => {
    const fd = createSocket(address);
    log.opened.push(fd);
    log.inodes.push(socketInode(fd) ?? -1);
    return fd;
  });
  easy.setopt('SOCKOPTFUNCTION', (fd) => {
    log.sockopt.push(fd);
    return opts.sockopt ? opts.sockopt(fd) : CURL_SOCKOPT_OK;
  });
  easy.setopt('CLOSESOCKETFUNCTION', (fd) => {
    log.closed.push(fd);
    closeSocket(fd);
    return 0;
  });
  return log;
}

/** A TCP listener on 127.0.0.2 that counts and drops every connection. */
interface Sink {
  port: number;
  connections: number;
  close(): Promise<void>;
}

async function startSink(host: string, port: number): Promise<Sink> {
  const sockets = new Set<net.Socket>();
  const sink = { port, connections: 0 } as Sink;
  const server = net.createServer((sock) => {
    sink.connections += 1;
    sockets.add(sock);
    sock.on('error', () => undefined);
    sock.on('close', () => sockets.delete(sock));
    sock.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  sink.port = (server.address() as net.AddressInfo).port;
  sink.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return sink;
}

const BAD_RETURNS: Array<[string, unknown]> = [
  ["'x'", 'x'],
  ['NaN', NaN],
  ['3.5', 3.5],
  ['2**31', 2 ** 31],
  ['undefined', undefined],
];

// ---------------------------------------------------------------------------
// OPENSOCKETFUNCTION arguments
// ---------------------------------------------------------------------------

describe('OPENSOCKETFUNCTION arguments', () => {
  it('IPv4: family AF_INET, SOCK_STREAM, TCP, 127.0.0.1 and the port; purpose IPCXN; clientp is OPENSOCKETDATA', async () => {
    await withServer(await startHttpServer({ host: '127.0.0.1' }), async (server) => {
      const data = { tag: 'opensocket data' };
      const calls: Array<{ purpose: number; address: CurlSockaddr; clientp: unknown }> = [];
      const easy = new Easy();
      easy.setopt('URL', `${server.url}/hello`);
      easy.setopt('OPENSOCKETDATA', data);
      easy.setopt('OPENSOCKETFUNCTION', (purpose, address, clientp) => {
        calls.push({ purpose, address: { ...address }, clientp });
        return createSocket(address);
      });
      const t = await withMulti((m) => m.perform(easy));
      easy.close();
      expect(t.status).toBe(200);
      expect(t.body.toString()).toBe('hello world\n');
      expect(calls).toHaveLength(1);
      const call = calls[0]!;
      expect(call.purpose).toBe(CURLSOCKTYPE_IPCXN);
      expect(call.clientp).toBe(data);
      expect(call.address.family).toBe(AF_INET);
      expect(call.address.socktype).toBe(SOCK_STREAM);
      expect([0, IPPROTO_TCP]).toContain(call.address.protocol);
      expect(call.address.address).toBe('127.0.0.1');
      expect(call.address.port).toBe(server.port);
      expect(server.connections).toBe(1);
    });
  });

  it('IPv6: family AF_INET6, address ::1 without brackets, a numeric scopeId', async () => {
    await withServer(await startHttpServer({ host: '::1' }), async (server) => {
      const calls: CurlSockaddr[] = [];
      let purposeSeen = -1;
      const easy = new Easy();
      easy.setopt('URL', `${server.url}/hello`);
      easy.setopt('OPENSOCKETFUNCTION', (purpose, address) => {
        purposeSeen = purpose;
        calls.push({ ...address });
        return createSocket(address);
      });
      const t = await withMulti((m) => m.perform(easy));
      easy.close();
      expect(t.body.toString()).toBe('hello world\n');
      expect(calls).toHaveLength(1);
      const a = calls[0]!;
      expect(purposeSeen).toBe(CURLSOCKTYPE_IPCXN);
      expect(a.family).toBe(AF_INET6);
      expect(a.socktype).toBe(SOCK_STREAM);
      expect([0, IPPROTO_TCP]).toContain(a.protocol);
      expect(a.address).toBe('::1');
      expect(a.port).toBe(server.port);
      expect(typeof a.scopeId).toBe('number');
      expect(a.scopeId).toBe(0);
    });
  });

  it('UNIX_SOCKET_PATH: family AF_UNIX, the path as address, port 0', async () => {
    await withServer(await startUnixServer(), async (server) => {
      const path = (server as TestServer & { path: string }).path;
      const calls: CurlSockaddr[] = [];
      let purposeSeen = -1;
      const easy = new Easy();
      easy.setopt('URL', 'http://localhost/hello');
      easy.setopt('UNIX_SOCKET_PATH', path);
      easy.setopt('OPENSOCKETFUNCTION', (purpose, address) => {
        purposeSeen = purpose;
        calls.push({ ...address });
        return createSocket(address);
      });
      const t = await withMulti((m) => m.perform(easy));
      easy.close();
      expect(t.body.toString()).toBe('hello world\n');
      expect(calls).toHaveLength(1);
      const a = calls[0]!;
      expect(purposeSeen).toBe(CURLSOCKTYPE_IPCXN);
      expect(a.family).toBe(AF_UNIX);
      expect(a.socktype).toBe(SOCK_STREAM);
      expect(a.address).toBe(path);
      expect(a.port).toBe(0);
      expect(server.connections).toBe(1);
    });
  });
});

// ---------------------------------------------------------------------------
// How often each callback runs
// ---------------------------------------------------------------------------

describe('call counts', () => {
  it('10 keep-alive transfers: opensocket and sockopt once, closesocket once with that fd when the pool closes', async () => {
    await withServer(await startHttpServer(), async (server) => {
      const closeData = { tag: 'closesocket data' };
      const sockoptData = { tag: 'sockopt data' };
      const opened: number[] = [];
      const sockopt: Array<[number, number, unknown]> = [];
      const closed: Array<[number, unknown]> = [];
      const multi = new Multi();
      const easy = new Easy();
      easy.setopt('URL', `${server.url}/connection-info`);
      easy.setopt('OPENSOCKETFUNCTION', (_p, address) => {
        const fd = createSocket(address);
        opened.push(fd);
        return fd;
      });
      easy.setopt('SOCKOPTDATA', sockoptData);
      easy.setopt('SOCKOPTFUNCTION', (fd, purpose, clientp) => {
        sockopt.push([fd, purpose, clientp]);
        return CURL_SOCKOPT_OK;
      });
      easy.setopt('CLOSESOCKETDATA', closeData);
      easy.setopt('CLOSESOCKETFUNCTION', (fd, clientp) => {
        closed.push([fd, clientp]);
        closeSocket(fd);
        return 0;
      });
      const localPorts = new Set<number>();
      for (let i = 0; i < 10; i++) {
        const t = await multi.perform(easy);
        expect(t.status).toBe(200);
        const info = JSON.parse(t.body.toString()) as { connectionIndex: number; requestIndexOnConnection: number; remotePort: number };
        expect(info.connectionIndex).toBe(1);
        expect(info.requestIndexOnConnection).toBe(i + 1);
        expect(t.info.numConnects).toBe(i === 0 ? 1 : 0);
        localPorts.add(info.remotePort);
      }
      expect(localPorts.size).toBe(1);
      expect(server.connections).toBe(1);
      expect(server.requests).toBe(10);
      expect(opened).toHaveLength(1);
      const fd = opened[0]!;
      expect(sockopt).toEqual([[fd, CURLSOCKTYPE_IPCXN, sockoptData]]);
      expect(closed).toHaveLength(0);
      // The connection lives in the Multi's pool: it closes with the Multi,
      // even though the Easy that opened it is gone by then.
      easy.close();
      multi.close();
      expect(closed).toEqual([[fd, closeData]]);
      await waitFor(() => server.openConnections() === 0, 2000, 'the server to see the connection close');
    });
  });

  it('FORBID_REUSE: one opensocket, sockopt and closesocket per transfer, each for the fd just opened', async () => {
    await withServer(await startHttpServer(), async (server) => {
      await withMulti(async (multi) => {
        const easy = new Easy();
        easy.setopt('URL', `${server.url}/hello`);
        easy.setopt('FORBID_REUSE', true);
        const log = trackSockets(easy);
        for (let i = 0; i < 5; i++) {
          const t = await multi.perform(easy);
          expect(t.body.toString()).toBe('hello world\n');
          // closed at the end of each transfer, before the promise settles
          expect(log.opened).toHaveLength(i + 1);
          expect(log.closed).toEqual(log.opened);
        }
        expect(log.sockopt).toEqual(log.opened);
        expect(server.connections).toBe(5);
        const live = openSocketInodes();
        for (const inode of log.inodes) expect(live.has(inode)).toBe(false);
        easy.close();
      });
    });
  });
});

describe('turning the socket callbacks off', () => {
  it('null, reset() and a new Easy (on a reused wrapper) each stop OPENSOCKETFUNCTION and SOCKOPTFUNCTION from being called', async () => {
    await withServer(await startHttpServer(), async (server) => {
      await withMulti(async (multi) => {
        const opened: number[] = [];
        const tuned: number[] = [];
        const open = (_purpose: number, address: CurlSockaddr): number => {
          const fd = createSocket(address);
          opened.push(fd);
          return fd;
        };
        const sockopt = (fd: number): number => {
          tuned.push(fd);
          return CURL_SOCKOPT_OK;
        };
        const configure = (easy: Easy): Easy =>
          easy.setopt('URL', `${server.url}/hello`).setopt('FORBID_REUSE', true).setopt('OPENSOCKETFUNCTION', open).setopt('SOCKOPTFUNCTION', sockopt);
        const counts = async (easy: Easy): Promise<[number, number]> => {
          const before: [number, number] = [opened.length, tuned.length];
          expect((await multi.perform(easy)).status).toBe(200);
          return [opened.length - before[0], tuned.length - before[1]];
        };

        const easy = configure(new Easy());
        expect(await counts(easy)).toEqual([1, 1]);
        easy.setopt('SOCKOPTFUNCTION', null);
        expect(await counts(easy)).toEqual([1, 0]);
        easy.setopt('OPENSOCKETFUNCTION', null);
        expect(await counts(easy)).toEqual([0, 0]);
        configure(easy);
        expect(await counts(easy)).toEqual([1, 1]);
        easy.reset();
        easy.setopt('URL', `${server.url}/hello`).setopt('FORBID_REUSE', true);
        expect(await counts(easy)).toEqual([0, 0]);
        configure(easy);
        easy.close();
        // The closed Easy's wrapper is the next one's: it starts with no callbacks.
        const next = new Easy().setopt('URL', `${server.url}/hello`).setopt('FORBID_REUSE', true);
        try {
          expect(await counts(next)).toEqual([0, 0]);
        } finally {
          next.close();
        }
      });
    });
  });
});

describe('duphandle() and the socket callbacks', () => {
  it('the copy gets the callbacks and their data; changing the original afterwards leaves the copy alone', async () => {
    await withServer(await startHttpServer(), async (server) => {
      await withMulti(async (multi) => {
        const original = new Easy();
        original.setopt('URL', `${server.url}/hello`);
        original.setopt('FORBID_REUSE', true);
        const log = trackSockets(original);
        const data = { tag: 'copied' };
        const closeData: unknown[] = [];
        original.setopt('CLOSESOCKETDATA', data);
        original.setopt('CLOSESOCKETFUNCTION', (fd, clientp) => {
          log.closed.push(fd);
          closeData.push(clientp);
          closeSocket(fd);
          return 0;
        });
        const copy = original.duphandle();
        // After the copy: the original's new callbacks must not reach the copy.
        const originalOpens: number[] = [];
        original.setopt('OPENSOCKETFUNCTION', (_purpose, address) => {
          const fd = createSocket(address);
          originalOpens.push(fd);
          return fd;
        });
        original.setopt('CLOSESOCKETDATA', { tag: 'changed' });
        try {
          const t = await multi.perform(copy);
          expect(t.body.toString()).toBe('hello world\n');
          expect(log.opened).toHaveLength(1);
          expect(log.sockopt).toEqual(log.opened);
          expect(log.closed).toEqual(log.opened);
          expect(closeData).toEqual([data]);
          expect(originalOpens).toEqual([]);

          const u = await multi.perform(original);
          expect(u.status).toBe(200);
          expect(originalOpens).toHaveLength(1);
          expect(log.opened).toHaveLength(1);
          expect(closeData).toEqual([data, { tag: 'changed' }]);
        } finally {
          copy.close();
          original.close();
        }
      });
    });
  });
});

// ---------------------------------------------------------------------------
// Refusing and rewriting in OPENSOCKETFUNCTION
// ---------------------------------------------------------------------------

describe('refusing in OPENSOCKETFUNCTION', () => {
  it('CURL_SOCKET_BAD fails the transfer with CURLE_COULDNT_CONNECT and nothing reaches the server', async () => {
    await withServer(await startHttpServer(), async (server) => {
      const easy = new Easy();
      let calls = 0;
      easy.setopt('URL', `${server.url}/hello`);
      easy.setopt('OPENSOCKETFUNCTION', () => {
        calls += 1;
        return CURL_SOCKET_BAD;
      });
      const err = await curlErrorOf(withMulti((m) => m.perform(easy)));
      easy.close();
      expect(err.code).toBe('CURLE_COULDNT_CONNECT');
      expect(err.curlCode).toBe(7);
      expect(err.cause).toBeUndefined();
      expect(calls).toBe(1);
      // give a stray connection time to show up
      await new Promise((r) => setTimeout(r, 50));
      expect(server.connections).toBe(0);
    });
  });

  describe('RESOLVE with two loopback addresses', () => {
    it('control: without a refusal the first address (127.0.0.2) is the one connected to', async () => {
      await withServer(await startHttpServer(), async (server) => {
        const sink = await startSink('127.0.0.2', server.port);
        try {
          const seen: string[] = [];
          const easy = new Easy();
          easy.setopt('URL', `http://multi.test:${server.port}/hello`);
          easy.setopt('RESOLVE', [`multi.test:${server.port}:127.0.0.2,127.0.0.1`]);
          easy.setopt('OPENSOCKETFUNCTION', (_p, address) => {
            seen.push(address.address);
            return createSocket(address);
          });
          // the sink accepts and drops, so the transfer fails after connecting there
          await rejectionOf(withMulti((m) => m.perform(easy)));
          easy.close();
          expect(seen[0]).toBe('127.0.0.2');
          expect(sink.connections).toBe(1);
        } finally {
          await sink.close();
        }
      });
    });

    it('refusing 127.0.0.2: the transfer succeeds through 127.0.0.1, and 127.0.0.2 sees no connection', async () => {
      await withServer(await startHttpServer(), async (server) => {
        const sink = await startSink('127.0.0.2', server.port);
        try {
          const seen: Array<[string, number]> = [];
          const easy = new Easy();
          easy.setopt('URL', `http://multi.test:${server.port}/hello`);
          easy.setopt('RESOLVE', [`multi.test:${server.port}:127.0.0.2,127.0.0.1`]);
          easy.setopt('OPENSOCKETFUNCTION', (_p, address) => {
            seen.push([address.address, address.port]);
            return address.address === '127.0.0.2' ? CURL_SOCKET_BAD : createSocket(address);
          });
          const t = await withMulti((m) => m.perform(easy));
          easy.close();
          expect(t.status).toBe(200);
          expect(t.body.toString()).toBe('hello world\n');
          expect(t.info.primaryIp).toBe('127.0.0.1');
          expect(seen).toEqual([
            ['127.0.0.2', server.port],
            ['127.0.0.1', server.port],
          ]);
          expect(sink.connections).toBe(0);
          expect(server.connections).toBe(1);
        } finally {
          await sink.close();
        }
      });
    });

    it('a throw for the first address: a later address succeeds, so the transfer succeeds', async () => {
      await withServer(await startHttpServer(), async (server) => {
        const sink = await startSink('127.0.0.2', server.port);
        try {
          const seen: string[] = [];
          const easy = new Easy();
          easy.setopt('URL', `http://multi.test:${server.port}/hello`);
          easy.setopt('RESOLVE', [`multi.test:${server.port}:127.0.0.2,127.0.0.1`]);
          easy.setopt('OPENSOCKETFUNCTION', (_p, address) => {
            seen.push(address.address);
            if (address.address === '127.0.0.2') throw new Error('not this one');
            return createSocket(address);
          });
          const t = await withMulti((m) => m.perform(easy));
          easy.close();
          expect(t.body.toString()).toBe('hello world\n');
          expect(seen).toEqual(['127.0.0.2', '127.0.0.1']);
          expect(sink.connections).toBe(0);
        } finally {
          await sink.close();
        }
      });
    });
  });
});

describe('rewriting the address in OPENSOCKETFUNCTION', () => {
  it('assigning port sends the connection to another server', async () => {
    const first = await startHttpServer();
    const second = await startHttpServer();
    try {
      const easy = new Easy();
      easy.setopt('URL', `${first.url}/connection-info`);
      easy.setopt('OPENSOCKETFUNCTION', (_p, address) => {
        address.port = second.port;
        return createSocket(address);
      });
      const t = await withMulti((m) => m.perform(easy));
      easy.close();
      expect(t.status).toBe(200);
      const info = JSON.parse(t.body.toString()) as { remotePort: number };
      expect(second.connections).toBe(1);
      expect(second.requests).toBe(1);
      expect(second.remotePorts).toEqual([info.remotePort]);
      expect(second.lastRequest?.headers.host).toBe(`127.0.0.1:${first.port}`);
      expect(first.connections).toBe(0);
    } finally {
      await first.close();
      await second.close();
    }
  });

  it('assigning address 127.0.0.1 instead of 127.0.0.2: the server on 127.0.0.1 answers, 127.0.0.2 sees nothing', async () => {
    await withServer(await startHttpServer(), async (server) => {
      const sink = await startSink('127.0.0.2', server.port);
      try {
        const seen: string[] = [];
        const easy = new Easy();
        easy.setopt('URL', `http://127.0.0.2:${server.port}/hello`);
        easy.setopt('OPENSOCKETFUNCTION', (_p, address) => {
          seen.push(address.address);
          address.address = '127.0.0.1';
          return createSocket(address);
        });
        const t = await withMulti((m) => m.perform(easy));
        easy.close();
        expect(seen).toEqual(['127.0.0.2']);
        expect(t.body.toString()).toBe('hello world\n');
        expect(server.connections).toBe(1);
        expect(server.lastRequest?.headers.host).toBe(`127.0.0.2:${server.port}`);
        expect(sink.connections).toBe(0);
      } finally {
        await sink.close();
      }
    });
  });

  it("an invalid rewrite ('not-an-ip') fails with a TypeError cause and the socket it returned is closed", async () => {
    await withServer(await startHttpServer(), async (server) => {
      const easy = new Easy();
      let inode: number | undefined;
      const closed: number[] = [];
      easy.setopt('URL', `${server.url}/hello`);
      easy.setopt('OPENSOCKETFUNCTION', (_p, address) => {
        const fd = createSocket(address);
        inode = socketInode(fd);
        address.address = 'not-an-ip';
        return fd;
      });
      easy.setopt('CLOSESOCKETFUNCTION', (fd) => {
        closed.push(fd);
        closeSocket(fd);
        return 0;
      });
      const before = openFdCount();
      const err = await curlErrorOf(withMulti((m) => m.perform(easy)));
      easy.close();
      expect(err.code).toBe('CURLE_COULDNT_CONNECT');
      expect(err.cause).toBeInstanceOf(TypeError);
      expect(String((err.cause as Error).message)).toContain('not-an-ip');
      expect(inode).toBeDefined();
      expect(openSocketInodes().has(inode!)).toBe(false);
      expect(openFdCount()).toBeLessThanOrEqual(before);
      expect(server.connections).toBe(0);
      // the fd never became libcurl's, so it is not handed to closesocket as well
      expect(closed).toEqual([]);
    });
  });

  it('assigning the path of an AF_UNIX address sends the connection to that socket', async () => {
    await withServer(await startUnixServer(), async (server) => {
      const realPath = (server as TestServer & { path: string }).path;
      const seen: string[] = [];
      const easy = new Easy();
      easy.setopt('URL', 'http://localhost/hello');
      easy.setopt('UNIX_SOCKET_PATH', `${realPath}.missing`);
      easy.setopt('OPENSOCKETFUNCTION', (_p, address) => {
        seen.push(address.address);
        address.address = realPath;
        return createSocket(address);
      });
      const t = await withMulti((m) => m.perform(easy));
      easy.close();
      expect(seen).toEqual([`${realPath}.missing`]);
      expect(t.body.toString()).toBe('hello world\n');
      expect(server.connections).toBe(1);
    });
  });

  it('assigning an address of another family (::1 for AF_INET) fails with a TypeError cause', async () => {
    await withServer(await startHttpServer(), async (server) => {
      const easy = new Easy();
      let inode: number | undefined;
      easy.setopt('URL', `${server.url}/hello`);
      easy.setopt('OPENSOCKETFUNCTION', (_p, address) => {
        const fd = createSocket(address);
        inode = socketInode(fd);
        address.address = '::1';
        return fd;
      });
      const err = await curlErrorOf(withMulti((m) => m.perform(easy)));
      easy.close();
      expect(err.code).toBe('CURLE_COULDNT_CONNECT');
      expect(err.cause).toBeInstanceOf(TypeError);
      expect(openSocketInodes().has(inode!)).toBe(false);
      expect(server.connections).toBe(0);
    });
  });

  it('a rewrite with a bad return value fails with the TypeError that names the returned value', async () => {
    await withServer(await startHttpServer(), async (server) => {
      const easy = new Easy();
      easy.setopt('URL', `${server.url}/hello`);
      easy.setopt('OPENSOCKETFUNCTION', (_p, address) => {
        address.port = 1;
        return 'x' as unknown as number;
      });
      const err = await curlErrorOf(withMulti((m) => m.perform(easy)));
      easy.close();
      expect(err.code).toBe('CURLE_COULDNT_CONNECT');
      expect(err.cause).toBeInstanceOf(TypeError);
      expect((err.cause as TypeError).message).toBe(
        'OPENSOCKETFUNCTION returned a string; expected a socket fd (integer >= 0) or CURL_SOCKET_BAD (-1)',
      );
      expect(server.connections).toBe(0);
    });
  });

  it('a rewrite applies to its own connection only; an array returned is a bad return, not a rewrite', async () => {
    const first = await startHttpServer();
    const second = await startHttpServer();
    try {
      const seen: CurlSockaddr[] = [];
      let redirect = true;
      const easy = new Easy();
      easy.setopt('URL', `${first.url}/hello`);
      easy.setopt('FORBID_REUSE', true);
      easy.setopt('OPENSOCKETFUNCTION', (_p, address) => {
        seen.push({ ...address });
        if (redirect) address.port = second.port;
        return createSocket(address);
      });
      await withMulti(async (m) => {
        expect((await m.perform(easy)).status).toBe(200);
        redirect = false;
        expect((await m.perform(easy)).status).toBe(200);
        expect('scopeId' in seen[0]!).toBe(false);
        expect(seen.map((a) => a.port)).toEqual([first.port, first.port]);
        expect(second.connections).toBe(1);
        expect(first.connections).toBe(1);
        let fd = -1;
        easy.setopt('OPENSOCKETFUNCTION', (_p, address) => {
          fd = createSocket(address);
          return [fd, address.address, second.port] as unknown as number;
        });
        const err = await curlErrorOf(m.perform(easy));
        expect(err.cause).toBeInstanceOf(TypeError);
        expect((err.cause as TypeError).message).toMatch(/^OPENSOCKETFUNCTION returned an object;/);
        closeSocket(fd);
        expect(second.connections).toBe(1);
      });
      easy.close();
    } finally {
      await first.close();
      await second.close();
    }
  });

  it('an invalid port (70000) fails with a TypeError cause', async () => {
    await withServer(await startHttpServer(), async (server) => {
      const easy = new Easy();
      let inode: number | undefined;
      easy.setopt('URL', `${server.url}/hello`);
      easy.setopt('OPENSOCKETFUNCTION', (_p, address) => {
        const fd = createSocket(address);
        inode = socketInode(fd);
        address.port = 70000;
        return fd;
      });
      const err = await curlErrorOf(withMulti((m) => m.perform(easy)));
      easy.close();
      expect(err.code).toBe('CURLE_COULDNT_CONNECT');
      expect(err.cause).toBeInstanceOf(TypeError);
      expect(openSocketInodes().has(inode!)).toBe(false);
      expect(server.connections).toBe(0);
    });
  });
});

// ---------------------------------------------------------------------------
// SOCKOPTFUNCTION and the socket option helpers
// ---------------------------------------------------------------------------

describe('SOCKOPTFUNCTION', () => {
  it('CURL_SOCKOPT_ERROR fails with CURLE_ABORTED_BY_CALLBACK and the socket is handed to closesocket and closed', async () => {
    await withServer(await startHttpServer(), async (server) => {
      const easy = new Easy();
      easy.setopt('URL', `${server.url}/hello`);
      const log = trackSockets(easy, { sockopt: () => CURL_SOCKOPT_ERROR });
      const err = await curlErrorOf(withMulti((m) => m.perform(easy)));
      easy.close();
      expect(err.code).toBe('CURLE_ABORTED_BY_CALLBACK');
      expect(err.cause).toBeUndefined();
      expect(log.opened).toHaveLength(1);
      expect(log.sockopt).toEqual(log.opened);
      expect(log.closed).toEqual(log.opened);
      expect(openSocketInodes().has(log.inodes[0]!)).toBe(false);
      // sockopt runs before connect()
      expect(server.connections).toBe(0);
    });
  });

  it('sets TCP_NODELAY, SO_KEEPALIVE and SO_RCVBUF with setSocketOption and reads them back with getSocketOption', async () => {
    await withServer(await startHttpServer(), async (server) => {
      const readings: Record<string, number> = {};
      const RCVBUF = 65536;
      let socketFd = -1;
      await withMulti(async (multi) => {
        const easy = new Easy();
        easy.setopt('URL', `${server.url}/hello`);
        easy.setopt('TCP_NODELAY', false); // libcurl's default is on: start from off
        easy.setopt('TCP_KEEPALIVE', false);
        easy.setopt('SOCKOPTFUNCTION', (fd, purpose) => {
          expect(purpose).toBe(CURLSOCKTYPE_IPCXN);
          socketFd = fd;
          readings.nodelayBefore = getSocketOption(fd, IPPROTO_TCP, TCP_NODELAY);
          readings.keepaliveBefore = getSocketOption(fd, SOL_SOCKET, SO_KEEPALIVE);
          setSocketOption(fd, IPPROTO_TCP, TCP_NODELAY, 1);
          setSocketOption(fd, SOL_SOCKET, SO_KEEPALIVE, true);
          setSocketOption(fd, SOL_SOCKET, SO_RCVBUF, RCVBUF);
          readings.nodelay = getSocketOption(fd, IPPROTO_TCP, TCP_NODELAY);
          readings.keepalive = getSocketOption(fd, SOL_SOCKET, SO_KEEPALIVE);
          readings.rcvbuf = getSocketOption(fd, SOL_SOCKET, SO_RCVBUF);
          return CURL_SOCKOPT_OK;
        });
        const t = await multi.perform(easy);
        expect(t.body.toString()).toBe('hello world\n');
        // The connection is pooled: the options are still on the socket.
        expect(getSocketOption(socketFd, IPPROTO_TCP, TCP_NODELAY)).toBe(1);
        expect(getSocketOption(socketFd, SOL_SOCKET, SO_KEEPALIVE)).toBe(1);
        // a Buffer value is passed as it is (little-endian int 0 turns keepalive off)
        setSocketOption(socketFd, SOL_SOCKET, SO_KEEPALIVE, Buffer.alloc(4));
        expect(getSocketOption(socketFd, SOL_SOCKET, SO_KEEPALIVE)).toBe(0);
        easy.close();
      });
      expect(readings.nodelayBefore).toBe(0);
      expect(readings.keepaliveBefore).toBe(0);
      expect(readings.nodelay).toBe(1);
      expect(readings.keepalive).toBe(1);
      expect(readings.rcvbuf).toBeGreaterThanOrEqual(RCVBUF);
    });
  });

  it('setSocketOption on a closed fd throws EBADF from setsockopt', () => {
    const fd = createSocket({ family: AF_INET, socktype: SOCK_STREAM, protocol: 0 });
    closeSocket(fd);
    let thrown: unknown;
    try {
      setSocketOption(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(Error);
    const e = thrown as NodeJS.ErrnoException;
    expect(e.code).toBe('EBADF');
    expect(e.syscall).toBe('setsockopt');
    expect(typeof e.errno).toBe('number');
  });

  it('getSocketOption with a bogus level or name throws ENOPROTOOPT (or EINVAL) from getsockopt', () => {
    const fd = createSocket({ family: AF_INET, socktype: SOCK_STREAM, protocol: 0 });
    try {
      // A bogus name at a real level: ENOPROTOOPT. A bogus level: the kernel
      // answers ENOPROTOOPT, EINVAL or EOPNOTSUPP (libuv calls 95 'ENOTSUP').
      for (const [level, name, codes] of [
        [SOL_SOCKET, 0x7ffe, ['ENOPROTOOPT', 'EINVAL']],
        [IPPROTO_TCP, 0x7ffe, ['ENOPROTOOPT', 'EINVAL']],
        [0x7ffe, 1, ['ENOPROTOOPT', 'EINVAL', 'ENOTSUP', 'EOPNOTSUPP']],
      ] as const) {
        let thrown: unknown;
        try {
          getSocketOption(fd, level, name);
        } catch (err) {
          thrown = err;
        }
        expect(thrown).toBeInstanceOf(Error);
        const e = thrown as NodeJS.ErrnoException;
        expect(codes).toContain(e.code);
        expect(e.syscall).toBe('getsockopt');
        expect(e.errno).toBeLessThan(0);
      }
      // and a proper one works on the same fd
      expect(getSocketOption(fd, SOL_SOCKET, SO_KEEPALIVE)).toBe(0);
    } finally {
      closeSocket(fd);
    }
  });

  it('the socket helpers take integers only: a string, a fraction, NaN or a number past 32 bits throws TypeError before any system call', () => {
    const fd = createSocket({ family: AF_INET, socktype: SOCK_STREAM, protocol: 0 });
    try {
      const before = openFdCount();
      for (const bad of ['1', 1.5, Number.NaN, Infinity, 2 ** 31, null, undefined, {}] as unknown as number[]) {
        expect(() => setSocketOption(bad, IPPROTO_TCP, TCP_NODELAY, 1)).toThrow(/fd must be an integer/);
        expect(() => setSocketOption(fd, bad, TCP_NODELAY, 1)).toThrow(/level must be an integer/);
        expect(() => getSocketOption(fd, IPPROTO_TCP, bad)).toThrow(/name must be an integer/);
        expect(() => closeSocket(bad)).toThrow(TypeError);
        expect(() => createSocket({ family: bad, socktype: SOCK_STREAM, protocol: 0 })).toThrow(/family must be an integer/);
      }
      expect(openFdCount()).toBe(before);
      // the fd is still open and usable: nothing above reached it
      setSocketOption(fd, IPPROTO_TCP, TCP_NODELAY, 1);
      expect(getSocketOption(fd, IPPROTO_TCP, TCP_NODELAY)).toBe(1);
    } finally {
      closeSocket(fd);
    }
  });
});

// ---------------------------------------------------------------------------
// Callback faults
// ---------------------------------------------------------------------------

describe('callback faults', () => {
  describe('OPENSOCKETFUNCTION', () => {
    it('a throw: CURLE_COULDNT_CONNECT with that error as cause, no connection', async () => {
      await withServer(await startHttpServer(), async (server) => {
        const boom = new Error('opensocket boom');
        const easy = new Easy();
        easy.setopt('URL', `${server.url}/hello`);
        easy.setopt('OPENSOCKETFUNCTION', () => {
          throw boom;
        });
        const err = await curlErrorOf(withMulti((m) => m.perform(easy)));
        easy.close();
        expect(err.code).toBe('CURLE_COULDNT_CONNECT');
        expect(err.cause).toBe(boom);
        expect(server.connections).toBe(0);
      });
    });

    for (const [label, value] of [...BAD_RETURNS, ['-2', -2] as [string, unknown], ['null', null] as [string, unknown]]) {
      it(`returning ${label}: CurlError with a TypeError cause`, async () => {
        await withServer(await startHttpServer(), async (server) => {
          const easy = new Easy();
          easy.setopt('URL', `${server.url}/hello`);
          easy.setopt('OPENSOCKETFUNCTION', () => value as number);
          const err = await curlErrorOf(withMulti((m) => m.perform(easy)));
          easy.close();
          expect(err.code).toBe('CURLE_COULDNT_CONNECT');
          expect(err.cause).toBeInstanceOf(TypeError);
          expect((err.cause as TypeError).message).toMatch(/OPENSOCKETFUNCTION/);
          expect(server.connections).toBe(0);
        });
      });
    }
  });

  describe('SOCKOPTFUNCTION', () => {
    it('a throw: CURLE_ABORTED_BY_CALLBACK with that error as cause; the socket is closed', async () => {
      await withServer(await startHttpServer(), async (server) => {
        const boom = new RangeError('sockopt boom');
        const easy = new Easy();
        easy.setopt('URL', `${server.url}/hello`);
        const log = trackSockets(easy, {
          sockopt: () => {
            throw boom;
          },
        });
        const err = await curlErrorOf(withMulti((m) => m.perform(easy)));
        easy.close();
        expect(err.code).toBe('CURLE_ABORTED_BY_CALLBACK');
        expect(err.cause).toBe(boom);
        expect(log.closed).toEqual(log.opened);
        expect(openSocketInodes().has(log.inodes[0]!)).toBe(false);
        expect(server.connections).toBe(0);
      });
    });

    for (const [label, value] of [...BAD_RETURNS, ['3', 3] as [string, unknown], ['-1', -1] as [string, unknown]]) {
      it(`returning ${label}: CurlError with a TypeError cause; the socket is closed`, async () => {
        await withServer(await startHttpServer(), async (server) => {
          const easy = new Easy();
          easy.setopt('URL', `${server.url}/hello`);
          const log = trackSockets(easy, { sockopt: () => value as number });
          const err = await curlErrorOf(withMulti((m) => m.perform(easy)));
          easy.close();
          expect(err.code).toBe('CURLE_ABORTED_BY_CALLBACK');
          expect(err.cause).toBeInstanceOf(TypeError);
          expect((err.cause as TypeError).message).toMatch(/SOCKOPTFUNCTION/);
          expect(log.opened).toHaveLength(1);
          expect(log.closed).toEqual(log.opened);
          expect(server.connections).toBe(0);
        });
      });
    }
  });

  describe('PREREQFUNCTION', () => {
    it('a throw: CURLE_ABORTED_BY_CALLBACK with that error as cause, no request sent', async () => {
      await withServer(await startHttpServer(), async (server) => {
        const boom = new Error('prereq boom');
        const easy = new Easy();
        easy.setopt('URL', `${server.url}/hello`);
        const log = trackSockets(easy);
        easy.setopt('PREREQFUNCTION', () => {
          throw boom;
        });
        const err = await withMulti(async (m) => {
          const e = await curlErrorOf(m.perform(easy));
          easy.close();
          return e;
        });
        expect(err.code).toBe('CURLE_ABORTED_BY_CALLBACK');
        expect(err.cause).toBe(boom);
        // The connect can finish and be closed before the server's loop gets to accept it.
        await waitFor(() => server.connections === 1, 1000, 'the server to accept the connection');
        expect(server.requests).toBe(0);
        expect(log.closed).toEqual(log.opened);
      });
    });

    for (const [label, value] of [...BAD_RETURNS, ['2', 2] as [string, unknown]]) {
      it(`returning ${label}: CurlError with a TypeError cause, no request sent`, async () => {
        await withServer(await startHttpServer(), async (server) => {
          const easy = new Easy();
          easy.setopt('URL', `${server.url}/hello`);
          easy.setopt('PREREQFUNCTION', () => value as number);
          const err = await curlErrorOf(withMulti((m) => m.perform(easy)));
          easy.close();
          expect(err.code).toBe('CURLE_ABORTED_BY_CALLBACK');
          expect(err.cause).toBeInstanceOf(TypeError);
          expect((err.cause as TypeError).message).toMatch(/PREREQFUNCTION/);
          expect(server.requests).toBe(0);
        });
      });
    }
  });

  describe('CLOSESOCKETFUNCTION', () => {
    it('returning without closing keeps the fd open for the application', async () => {
      await withServer(await startHttpServer(), async (server) => {
        const easy = new Easy();
        const kept: number[] = [];
        let inode: number | undefined;
        easy.setopt('URL', `${server.url}/hello`);
        easy.setopt('FORBID_REUSE', true);
        easy.setopt('OPENSOCKETFUNCTION', (_p, address) => {
          const fd = createSocket(address);
          inode = socketInode(fd);
          return fd;
        });
        easy.setopt('CLOSESOCKETFUNCTION', (fd) => {
          kept.push(fd);
          return 0;
        });
        const t = await withMulti((m) => m.perform(easy));
        easy.close();
        expect(t.body.toString()).toBe('hello world\n');
        expect(kept).toHaveLength(1);
        expect(socketInode(kept[0]!)).toBe(inode);
        // the application's to close now
        closeSocket(kept[0]!);
        expect(openSocketInodes().has(inode!)).toBe(false);
      });
    });

    it('a throw before closing: the binding closes the fd, once (20 cycles, canary fds survive)', async () => {
      await withServer(await startHttpServer(), async (server) => {
        await withMulti(async (multi) => {
          const easy = new Easy();
          const boom = new Error('closesocket boom');
          const handed: number[] = [];
          const inodes: number[] = [];
          easy.setopt('URL', `${server.url}/hello`);
          easy.setopt('FORBID_REUSE', true);
          easy.setopt('OPENSOCKETFUNCTION', (_p, address) => {
            const fd = createSocket(address);
            inodes.push(socketInode(fd) ?? -1);
            return fd;
          });
          easy.setopt('CLOSESOCKETFUNCTION', (fd) => {
            handed.push(fd);
            throw boom;
          });
          // Canaries take the lowest free fd numbers after each cycle: if the
          // binding ever closed an fd twice, one of them would be closed.
          const canaries: Array<[number, number]> = [];
          const baseline = openFdCount();
          for (let i = 0; i < 20; i++) {
            try {
              const t = await multi.perform(easy);
              expect(t.body.toString()).toBe('hello world\n');
            } catch (err) {
              // if the fault is surfaced, it must be this one
              expect(err).toBeInstanceOf(CurlError);
              expect((err as CurlError).cause).toBe(boom);
            }
            expect(handed).toHaveLength(i + 1);
            expect(openSocketInodes().has(inodes[i]!)).toBe(false);
            const canary = createSocket({ family: AF_INET, socktype: SOCK_STREAM, protocol: 0 });
            canaries.push([canary, socketInode(canary)!]);
          }
          for (const [fd, inode] of canaries) expect(socketInode(fd)).toBe(inode);
          for (const [fd] of canaries) closeSocket(fd);
          await waitFor(() => server.openConnections() === 0, 2000, 'server side closes');
          expect(openFdCount()).toBe(baseline);
          easy.close();
        });
      });
    });

    for (const forbidReuse of [true, false]) {
      it(`a throw is not lost (${forbidReuse ? 'closed as the transfer ends' : 'closed later with the pool'}): it is the transfer's cause or a process warning`, async () => {
        await withServer(await startHttpServer(), async (server) => {
          const warnings: Error[] = [];
          const onWarning = (w: Error): void => {
            warnings.push(w);
          };
          process.on('warning', onWarning);
          try {
            const boom = new Error(`closesocket boom ${forbidReuse}`);
            const multi = new Multi();
            const easy = new Easy();
            let calls = 0;
            easy.setopt('URL', `${server.url}/hello`);
            easy.setopt('FORBID_REUSE', forbidReuse);
            easy.setopt('CLOSESOCKETFUNCTION', () => {
              calls += 1;
              throw boom;
            });
            let cause: unknown;
            try {
              await multi.perform(easy);
            } catch (err) {
              cause = (err as Error).cause;
            }
            easy.close();
            multi.close();
            expect(calls).toBe(1);
            // process 'warning' events are emitted on a later tick
            await new Promise((r) => setTimeout(r, 20));
            const surfaced = cause === boom || warnings.some((w) => w === boom || w.message === boom.message);
            expect(surfaced).toBe(true);
          } finally {
            process.off('warning', onWarning);
          }
        });
      });
    }

    it('closing and then throwing: the fd is not closed a second time', async () => {
      await withServer(await startHttpServer(), async (server) => {
        await withMulti(async (multi) => {
          const easy = new Easy();
          const boom = new Error('after close');
          const canaries: Array<{ fd: number; closedFd: number; inode: number }> = [];
          easy.setopt('URL', `${server.url}/hello`);
          easy.setopt('FORBID_REUSE', true);
          easy.setopt('CLOSESOCKETFUNCTION', (fd) => {
            closeSocket(fd);
            // most likely gets the number just freed
            const canary = createSocket({ family: AF_INET, socktype: SOCK_STREAM, protocol: 0 });
            canaries.push({ fd: canary, closedFd: fd, inode: socketInode(canary)! });
            throw boom;
          });
          for (let i = 0; i < 10; i++) {
            try {
              await multi.perform(easy);
            } catch (err) {
              expect((err as CurlError).cause).toBe(boom);
            }
          }
          easy.close();
          expect(canaries).toHaveLength(10);
          // the check below only means something if some canary reused the number
          expect(canaries.some((c) => c.fd === c.closedFd)).toBe(true);
          for (const c of canaries) expect(socketInode(c.fd)).toBe(c.inode);
          for (const c of canaries) closeSocket(c.fd);
        });
      });
    });

    it('closeSocket twice on the fd in one callback: the second throws EBADF and nothing else is closed', async () => {
      await withServer(await startHttpServer(), async (server) => {
        await withMulti(async (multi) => {
          const easy = new Easy();
          const errors: unknown[] = [];
          let canary: [number, number] | undefined;
          easy.setopt('URL', `${server.url}/hello`);
          easy.setopt('FORBID_REUSE', true);
          easy.setopt('CLOSESOCKETFUNCTION', (fd) => {
            closeSocket(fd);
            const c = createSocket({ family: AF_INET, socktype: SOCK_STREAM, protocol: 0 });
            canary = [c, socketInode(c)!];
            try {
              closeSocket(fd);
            } catch (err) {
              errors.push(err);
            }
            return 0;
          });
          const t = await multi.perform(easy);
          easy.close();
          expect(t.body.toString()).toBe('hello world\n');
          expect(errors).toHaveLength(1);
          expect((errors[0] as NodeJS.ErrnoException).code).toBe('EBADF');
          expect(socketInode(canary![0])).toBe(canary![1]);
          closeSocket(canary![0]);
        });
      });
    });
  });
});

// ---------------------------------------------------------------------------
// PREREQFUNCTION
// ---------------------------------------------------------------------------

describe('PREREQFUNCTION', () => {
  it('gets both IPs and ports of the connection and PREREQDATA; runs again on reuse', async () => {
    await withServer(await startHttpServer(), async (server) => {
      const data = { tag: 'prereq data' };
      const calls: Array<[string, string, number, number, unknown]> = [];
      await withMulti(async (multi) => {
        const easy = new Easy();
        easy.setopt('URL', `${server.url}/connection-info`);
        easy.setopt('PREREQDATA', data);
        easy.setopt('PREREQFUNCTION', (primaryIp, localIp, primaryPort, localPort, clientp) => {
          calls.push([primaryIp, localIp, primaryPort, localPort, clientp]);
          return CURL_PREREQFUNC_OK;
        });
        const t1 = await multi.perform(easy);
        const t2 = await multi.perform(easy);
        easy.close();
        const info1 = JSON.parse(t1.body.toString()) as { remotePort: number; connectionIndex: number };
        const info2 = JSON.parse(t2.body.toString()) as { remotePort: number; connectionIndex: number };
        expect(info2.connectionIndex).toBe(info1.connectionIndex);
        expect(server.remotePorts).toEqual([info1.remotePort]);
        expect(calls).toEqual([
          ['127.0.0.1', '127.0.0.1', server.port, info1.remotePort, data],
          ['127.0.0.1', '127.0.0.1', server.port, info1.remotePort, data],
        ]);
      });
    });
  });

  it('CURL_PREREQFUNC_ABORT fails with CURLE_ABORTED_BY_CALLBACK and the server receives no request', async () => {
    await withServer(await startHttpServer(), async (server) => {
      const easy = new Easy();
      let calls = 0;
      easy.setopt('URL', `${server.url}/hello`);
      easy.setopt('PREREQFUNCTION', () => {
        calls += 1;
        return CURL_PREREQFUNC_ABORT;
      });
      const err = await curlErrorOf(withMulti((m) => m.perform(easy)));
      easy.close();
      expect(err.code).toBe('CURLE_ABORTED_BY_CALLBACK');
      expect(err.cause).toBeUndefined();
      expect(calls).toBe(1);
      await new Promise((r) => setTimeout(r, 50));
      expect(server.connections).toBe(1);
      expect(server.requests).toBe(0);
    });
  });
});

// ---------------------------------------------------------------------------
// close() from inside callbacks
// ---------------------------------------------------------------------------

type CallbackName = 'opensocket' | 'sockopt' | 'closesocket' | 'prereq' | 'write' | 'header';
const CALLBACKS: CallbackName[] = ['opensocket', 'sockopt', 'closesocket', 'prereq', 'write', 'header'];

function isAbortOrCurlError(err: unknown): boolean {
  return err instanceof CurlError || (err instanceof Error && err.name === 'AbortError');
}

describe('close() from inside a callback', () => {
  for (const cb of CALLBACKS) {
    for (const which of ['easy', 'multi'] as const) {
      it(`${which}.close() inside ${cb}: no crash, the transfer settles, fds are accounted, the process keeps working`, async () => {
        const server = await startHttpServer();
        try {
          // settle the default Multi's fds first
          const warm = new Easy();
          warm.setopt('URL', `${server.url}/hello`);
          await warm.perform();
          warm.close();
          await waitFor(() => server.openConnections() <= 1, 2000, 'warm-up');
          const baseline = openFdCount();
          const baselineOpen = server.openConnections();

          const multi = new Multi();
          const easy = new Easy();
          let calledInside = 0;
          let closeThrew: unknown;
          const closeNow = (): void => {
            calledInside += 1;
            try {
              if (which === 'easy') easy.close();
              else multi.close();
            } catch (err) {
              closeThrew = err;
            }
          };
          const opened: number[] = [];
          const closed: number[] = [];
          easy.setopt('URL', `${server.url}/hello`);
          easy.setopt('FORBID_REUSE', true);
          easy.setopt('OPENSOCKETFUNCTION', (_p, address) => {
            if (cb === 'opensocket') closeNow();
            const fd = createSocket(address);
            opened.push(fd);
            return fd;
          });
          easy.setopt('SOCKOPTFUNCTION', () => {
            if (cb === 'sockopt') closeNow();
            return CURL_SOCKOPT_OK;
          });
          easy.setopt('CLOSESOCKETFUNCTION', (fd) => {
            closed.push(fd);
            closeSocket(fd);
            if (cb === 'closesocket') closeNow();
            return 0;
          });
          easy.setopt('PREREQFUNCTION', () => {
            if (cb === 'prereq') closeNow();
            return CURL_PREREQFUNC_OK;
          });
          easy.setopt('WRITEFUNCTION', (chunk) => {
            if (cb === 'write') closeNow();
            return chunk.length;
          });
          easy.setopt('HEADERFUNCTION', (chunk) => {
            if (cb === 'header') closeNow();
            return chunk.length;
          });

          let outcome: { ok: true; t: Transfer } | { ok: false; err: unknown };
          try {
            outcome = { ok: true, t: await multi.perform(easy) };
          } catch (err) {
            outcome = { ok: false, err };
          }
          expect(calledInside).toBeGreaterThanOrEqual(1);
          expect(closeThrew).toBeUndefined();
          if (cb === 'closesocket') {
            // The connection closes as the transfer ends: the transfer may already be complete.
            if (!outcome.ok) expect(isAbortOrCurlError(outcome.err)).toBe(true);
          } else {
            expect(outcome.ok).toBe(false);
            if (!outcome.ok) {
              expect(isAbortOrCurlError(outcome.err)).toBe(true);
              if (!(outcome.err instanceof CurlError)) expect((outcome.err as Error).name).toBe('AbortError');
            }
          }
          if (which === 'easy') expect(easy.closed).toBe(true);
          // closing again is harmless
          easy.close();
          multi.close();
          expect(() => multi.perform(new Easy())).toThrow();

          // every fd the transfer opened was handed back and closed. libcurl 7.88
          // closes a socket that is still connecting itself, without calling
          // CLOSESOCKETFUNCTION, when its transfer is removed: there only the
          // closing is checked (by the fd count below).
          if (!LIBCURL_788 || cb !== 'opensocket' && cb !== 'sockopt') expect(closed.slice().sort()).toEqual(opened.slice().sort());
          await waitFor(() => server.openConnections() <= baselineOpen, 2000, 'server side closes');
          await waitFor(() => openFdCount() <= baseline, 2000, `fd count back to ${baseline}`);

          // the process keeps working
          const fresh = new Easy();
          fresh.setopt('URL', `${server.url}/hello`);
          const t = await fresh.perform();
          fresh.close();
          expect(t.body.toString()).toBe('hello world\n');
        } finally {
          await server.close();
        }
      });
    }
  }

  for (const which of ['easy', 'multi'] as const) {
    it(`${which}.close() inside a closesocket that runs during multi.close(): no crash`, async () => {
      await withServer(await startHttpServer(), async (server) => {
        const multi = new Multi();
        const easy = new Easy();
        const closed: number[] = [];
        let threw: unknown;
        easy.setopt('URL', `${server.url}/hello`);
        easy.setopt('CLOSESOCKETFUNCTION', (fd) => {
          closed.push(fd);
          closeSocket(fd);
          try {
            if (which === 'easy') easy.close();
            else multi.close();
          } catch (err) {
            threw = err;
          }
          return 0;
        });
        const t = await multi.perform(easy);
        expect(t.body.toString()).toBe('hello world\n');
        expect(closed).toHaveLength(0); // pooled
        multi.close(); // closesocket runs inside curl_multi_cleanup
        expect(closed).toHaveLength(1);
        expect(threw).toBeUndefined();
        easy.close();
        await waitFor(() => server.openConnections() === 0, 2000, 'the server to see the close');

        const fresh = new Easy();
        fresh.setopt('URL', `${server.url}/hello`);
        const t2 = await fresh.perform();
        fresh.close();
        expect(t2.body.toString()).toBe('hello world\n');
      });
    });
  }
});

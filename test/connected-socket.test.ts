// Pre-connected sockets: Easy#useConnectedSocket, adoptSocket, and the raw
// OPENSOCKETFUNCTION / SOCKOPTFUNCTION(ALREADY_CONNECTED) / CLOSESOCKETFUNCTION
// trio. Every URL here names 99.99.99.99, which must never be contacted: the
// socket is connected by the test to a loopback server, and every Easy that
// could want a fresh connection has an OPENSOCKETFUNCTION that refuses it.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import { describe, it, expect } from 'vitest';

import {
  Easy,
  Multi,
  CurlError,
  adoptSocket,
  closeSocket,
  CURL_SOCKET_BAD,
  CURL_SOCKOPT_ALREADY_CONNECTED,
  CURLSOCKTYPE_IPCXN,
  libcurlVersion,
} from '../dist/index.js';
import type { CurlSockaddr } from '../dist/index.js';
import {
  TEST_CA_FILE,
  connectTcp,
  startHttpServer,
  startHttpsServer,
  startRawTcpServer,
  startUnixServer,
  type TestServer,
  type UnixTestServer,
} from './helpers/servers';
import { isCloexec, listSocketFds, socketInode } from './helpers/fds';
import { rejection as rejectionOf, waitFor } from './helpers/wait';

const IS_788 = libcurlVersion.startsWith('7.88.');
const UNREACHABLE = 'http://99.99.99.99/hello';

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

function connectUnix(sockPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ path: sockPath });
    sock.once('error', reject);
    sock.once('connect', () => {
      sock.off('error', reject);
      resolve(sock);
    });
  });
}

/**
 * An OPENSOCKETFUNCTION that records every address it is asked for and
 * refuses it: nothing is ever connected to 99.99.99.99.
 */
function refuseAll(easy: Easy): CurlSockaddr[] {
  const asked: CurlSockaddr[] = [];
  easy.setopt('OPENSOCKETFUNCTION', (_purpose, address) => {
    asked.push({ ...address });
    return CURL_SOCKET_BAD;
  });
  return asked;
}

function socketInodes(): Set<number> {
  return new Set(listSocketFds().values());
}

// ---------------------------------------------------------------------------
// libcurl 7.88
// ---------------------------------------------------------------------------

describe('useConnectedSocket on libcurl 7.88.x', () => {
  it.runIf(IS_788)('throws an Error that names the version', async () => {
    const server = await startHttpServer();
    const sock = await connectTcp(server.port);
    const easy = new Easy();
    try {
      expect(() => easy.useConnectedSocket(sock)).toThrow(Error);
      expect(() => easy.useConnectedSocket(sock)).toThrow(libcurlVersion);
    } finally {
      easy.close();
      sock.destroy();
      await server.close();
    }
  });
});

// ---------------------------------------------------------------------------
// useConnectedSocket
// ---------------------------------------------------------------------------

describe.skipIf(IS_788)('useConnectedSocket', () => {
  describe('a TCP net.Socket', () => {
    it('carries TLS: the certificate is checked against the URL\'s host name, not the socket\'s peer', async () => {
      const server = await startHttpsServer();
      const easy = new Easy();
      try {
        // The test certificate names localhost and 127.0.0.1; the URL's host is never resolved or contacted.
        easy.setopt('URL', `https://localhost:${server.port}/hello`).setopt('CAINFO', TEST_CA_FILE);
        const asked = refuseAll(easy);
        easy.useConnectedSocket(await connectTcp(server.port));
        const t = await easy.perform();
        expect(t.status).toBe(200);
        expect(t.body.toString()).toBe('hello world\n');
        expect(asked).toEqual([]);
        expect(server.connections).toBe(1);

        // The same socket route to a name the certificate does not cover: verification fails.
        easy.setopt('URL', 'https://99.99.99.99/hello');
        easy.useConnectedSocket(await connectTcp(server.port));
        const err = await rejectionOf(easy.perform());
        expect(err).toBeInstanceOf(CurlError);
        expect((err as CurlError).code).toBe('CURLE_PEER_FAILED_VERIFICATION');
        expect(asked).toEqual([]);
        expect(server.connections).toBe(2);
        expect(server.requests).toBe(1);
      } finally {
        easy.close();
        await server.close();
      }
    });

    it('carries the transfer; the connection stays private to its Easy and is reused by it', async () => {
      const server = await startHttpServer();
      const multi = new Multi();
      const first = new Easy();
      const second = new Easy();
      try {
        const sock = await connectTcp(server.port);
        const localPort = sock.localPort!;
        first.setopt('URL', UNREACHABLE);
        const firstAsked = refuseAll(first);
        first.useConnectedSocket(sock);
        // the net.Socket was adopted: Node no longer uses it
        expect(sock.destroyed).toBe(true);

        const t1 = await multi.perform(first);
        expect(t1.status).toBe(200);
        expect(t1.body.toString()).toBe('hello world\n');
        expect(firstAsked).toEqual([]);
        expect(server.connections).toBe(1);
        expect(server.remotePorts).toEqual([localPort]);
        expect(server.lastRequest?.headers.host).toBe('99.99.99.99');

        // Another Easy on the same Multi wants the same origin: it must not be
        // given that connection; it asks for a new one (refused here).
        second.setopt('URL', UNREACHABLE);
        second.setopt('CONNECTTIMEOUT_MS', 2000);
        const secondAsked = refuseAll(second);
        const err = await rejectionOf(multi.perform(second));
        expect(err).toBeInstanceOf(CurlError);
        expect((err as CurlError).code).toBe('CURLE_COULDNT_CONNECT');
        expect(secondAsked.length).toBeGreaterThanOrEqual(1);
        expect(secondAsked[0]!.address).toBe('99.99.99.99');
        expect(secondAsked[0]!.port).toBe(80);
        expect(server.connections).toBe(1);
        expect(server.requests).toBe(1);

        // The first Easy itself reuses its private connection.
        const t2 = await multi.perform(first);
        expect(t2.body.toString()).toBe('hello world\n');
        expect(t2.info.numConnects).toBe(0);
        expect(firstAsked).toEqual([]);
        expect(server.connections).toBe(1);
        expect(server.requests).toBe(2);
        expect(server.requestLog.map((r) => r.connectionIndex)).toEqual([1, 1]);
      } finally {
        first.close();
        second.close();
        multi.close();
        await server.close();
      }
    });

    it('closing the Easy closes its private connection (the Multi stays open)', async () => {
      const server = await startHttpServer();
      const multi = new Multi();
      const easy = new Easy();
      try {
        const sock = await connectTcp(server.port);
        easy.setopt('URL', UNREACHABLE);
        refuseAll(easy);
        easy.useConnectedSocket(sock);
        const t = await multi.perform(easy);
        expect(t.body.toString()).toBe('hello world\n');
        await new Promise((r) => setTimeout(r, 50));
        expect(server.openConnections()).toBe(1);
        easy.close();
        await waitFor(() => server.openConnections() === 0, 1000, 'the server to see the private connection close');
        expect(server.connections).toBe(1);
      } finally {
        easy.close();
        multi.close();
        await server.close();
      }
    });

    it('reset() closes the private connection too, and the Easy stays usable', async () => {
      const server = await startHttpServer();
      const multi = new Multi();
      const easy = new Easy();
      try {
        const sock = await connectTcp(server.port);
        easy.setopt('URL', UNREACHABLE);
        refuseAll(easy);
        easy.useConnectedSocket(sock);
        const t = await multi.perform(easy);
        expect(t.body.toString()).toBe('hello world\n');
        await new Promise((r) => setTimeout(r, 50));
        expect(server.openConnections()).toBe(1);
        easy.reset();
        await waitFor(() => server.openConnections() === 0, 1000, 'the server to see the private connection close');
        // usable for an ordinary transfer afterwards
        easy.setopt('URL', `${server.url}/hello`);
        const t2 = await multi.perform(easy);
        expect(t2.body.toString()).toBe('hello world\n');
        expect(server.connections).toBe(2);
      } finally {
        easy.close();
        multi.close();
        await server.close();
      }
    });

    it('a second socket ends the first one\'s connection; close() then ends the second, also when the wrapper serves a new Easy', async () => {
      const server = await startHttpServer();
      const multi = new Multi();
      const easy = new Easy();
      let next: Easy | undefined;
      try {
        easy.setopt('URL', UNREACHABLE);
        refuseAll(easy);
        for (const expectedConnections of [1, 2]) {
          easy.useConnectedSocket(await connectTcp(server.port));
          expect((await multi.perform(easy)).status).toBe(200);
          expect(server.connections).toBe(expectedConnections);
          // Only the newest handed connection is left open.
          await waitFor(() => server.openConnections() === 1, 1000, 'one open connection');
        }
        easy.close();
        next = new Easy();  // may reopen the closed Easy's wrapper
        await waitFor(() => server.openConnections() === 0, 1000, 'the server to see the private connection close');
        next.setopt('URL', `${server.url}/hello`);
        expect((await multi.perform(next)).status).toBe(200);
      } finally {
        easy.close();
        next?.close();
        multi.close();
        await server.close();
      }
    });
  });

  describe('a Unix-domain net.Socket', () => {
    it('carries the transfer; the connection stays private to its Easy and is reused by it', async () => {
      const server: UnixTestServer = await startUnixServer();
      const multi = new Multi();
      const first = new Easy();
      const second = new Easy();
      try {
        const sock = await connectUnix(server.path);
        first.setopt('URL', UNREACHABLE);
        const firstAsked = refuseAll(first);
        first.useConnectedSocket(sock);
        const t1 = await multi.perform(first);
        expect(t1.status).toBe(200);
        expect(t1.body.toString()).toBe('hello world\n');
        expect(firstAsked).toEqual([]);
        expect(server.connections).toBe(1);

        second.setopt('URL', UNREACHABLE);
        const secondAsked = refuseAll(second);
        const err = await rejectionOf(multi.perform(second));
        expect(err).toBeInstanceOf(CurlError);
        expect((err as CurlError).code).toBe('CURLE_COULDNT_CONNECT');
        expect(secondAsked.length).toBeGreaterThanOrEqual(1);
        expect(secondAsked[0]!.address).toBe('99.99.99.99');
        expect(server.connections).toBe(1);
        expect(server.requests).toBe(1);

        const t2 = await multi.perform(first);
        expect(t2.body.toString()).toBe('hello world\n');
        expect(server.connections).toBe(1);
        expect(server.requestLog.map((r) => r.connectionIndex)).toEqual([1, 1]);

        first.close();
        await waitFor(() => server.openConnections() === 0, 1000, 'the server to see the private connection close');
      } finally {
        first.close();
        second.close();
        multi.close();
        await server.close();
      }
    });
  });

  it('closing the Easy before any transfer closes the socket it was given', async () => {
    const server = await startHttpServer();
    const easy = new Easy();
    try {
      const sock = await connectTcp(server.port);
      await waitFor(() => server.openConnections() === 1, 1000, 'accept');
      easy.useConnectedSocket(sock);
      await new Promise((r) => setTimeout(r, 50));
      expect(server.openConnections()).toBe(1);
      easy.close();
      await waitFor(() => server.openConnections() === 0, 1000, 'the server to see the socket close');
    } finally {
      easy.close();
      await server.close();
    }
  });

  it('duphandle() does not copy a pending connected socket', async () => {
    const server = await startHttpServer();
    const multi = new Multi();
    const original = new Easy();
    let copy: Easy | undefined;
    try {
      const sock = await connectTcp(server.port);
      original.setopt('URL', UNREACHABLE);
      original.setopt('OPENSOCKETDATA', 'original');
      const asked: Array<[string, unknown]> = [];
      original.setopt('OPENSOCKETFUNCTION', (_p, address, clientp) => {
        asked.push([address.address, clientp]);
        return CURL_SOCKET_BAD;
      });
      original.useConnectedSocket(sock);
      copy = original.duphandle();
      // the copy has the options (URL, the refusing opensocket) but not the socket
      const err = await rejectionOf(multi.perform(copy));
      expect((err as CurlError).code).toBe('CURLE_COULDNT_CONNECT');
      expect(asked[0]).toEqual(['99.99.99.99', 'original']);
      expect(server.connections).toBe(1);
      expect(server.requests).toBe(0);
      asked.length = 0;
      // the original still has it
      const t = await multi.perform(original);
      expect(t.body.toString()).toBe('hello world\n');
      expect(asked).toEqual([]);
      expect(server.requests).toBe(1);
    } finally {
      copy?.close();
      original.close();
      multi.close();
      await server.close();
    }
  });

  it('a number fd from adoptSocket works the same, and the fd is closed once the connection goes', async () => {
    const server = await startHttpServer();
    const multi = new Multi();
    const first = new Easy();
    const second = new Easy();
    try {
      const sock = await connectTcp(server.port);
      const localPort = sock.localPort!;
      const fd = adoptSocket(sock);
      const inode = socketInode(fd);
      expect(inode).toBeDefined();
      first.setopt('URL', UNREACHABLE);
      const firstAsked = refuseAll(first);
      first.useConnectedSocket(fd);
      const t1 = await multi.perform(first);
      expect(t1.body.toString()).toBe('hello world\n');
      expect(firstAsked).toEqual([]);
      expect(server.remotePorts).toEqual([localPort]);

      second.setopt('URL', UNREACHABLE);
      const secondAsked = refuseAll(second);
      const err = await rejectionOf(multi.perform(second));
      expect((err as CurlError).code).toBe('CURLE_COULDNT_CONNECT');
      expect(secondAsked[0]?.address).toBe('99.99.99.99');
      expect(server.connections).toBe(1);

      const t2 = await multi.perform(first);
      expect(t2.body.toString()).toBe('hello world\n');
      expect(server.connections).toBe(1);

      first.close();
      await waitFor(() => server.openConnections() === 0, 1000, 'the server to see the private connection close');
      multi.close();
      // libcurl's connection is gone with the Multi: the fd is closed
      expect(socketInodes().has(inode!)).toBe(false);
    } finally {
      first.close();
      second.close();
      multi.close();
      await server.close();
    }
  });

  it('a number fd must be a socket that nothing else will close: stdio, files, closed fds, sockets libcurl holds and another Easy\'s are refused', async () => {
    const server = await startHttpServer();
    const multi = new Multi();
    const easy = new Easy();
    const other = new Easy();
    const file = fs.openSync(__filename, 'r');
    try {
      for (const fd of [0, 1, 2]) expect(() => easy.useConnectedSocket(fd)).toThrow(expect.objectContaining({ code: 'ENOTSOCK' }));
      expect(() => easy.useConnectedSocket(file)).toThrow(expect.objectContaining({ code: 'ENOTSOCK' }));

      const gone = adoptSocket(await connectTcp(server.port));
      closeSocket(gone);
      expect(() => easy.useConnectedSocket(gone)).toThrow(expect.objectContaining({ code: 'EBADF' }));

      // A handed socket whose connection libcurl keeps in its pool after the transfer.
      const fd = adoptSocket(await connectTcp(server.port));
      easy.setopt('URL', UNREACHABLE).useConnectedSocket(fd);
      expect(() => other.useConnectedSocket(fd)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_OWNED_BY_LIBCURL' }));
      expect((await multi.perform(easy)).status).toBe(200);
      expect(() => other.useConnectedSocket(fd)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_OWNED_BY_LIBCURL' }));
      expect(() => easy.useConnectedSocket(fd)).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_OWNED_BY_LIBCURL' }));
    } finally {
      fs.closeSync(file);
      easy.close();
      other.close();
      multi.close();
      await server.close();
    }
  });

  it('a test-made Unix server with a canned response: the body arrives', async () => {
    const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'curl-sockets-canned-'));
    const sockPath = path.join(dir, 'canned.sock');
    const received: Buffer[] = [];
    let accepted = 0;
    const peers = new Set<net.Socket>();
    const server = net.createServer((peer) => {
      accepted += 1;
      peers.add(peer);
      peer.on('error', () => undefined);
      let seen = Buffer.alloc(0);
      peer.on('data', (chunk: Buffer) => {
        received.push(chunk);
        seen = Buffer.concat([seen, chunk]);
        if (seen.includes('\r\n\r\n')) {
          seen = Buffer.alloc(0);
          peer.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(sockPath, resolve));
    const multi = new Multi();
    const easy = new Easy();
    try {
      const sock = await connectUnix(sockPath);
      easy.setopt('URL', 'http://99.99.99.99/canned');
      const asked = refuseAll(easy);
      easy.useConnectedSocket(sock);
      const t = await multi.perform(easy);
      expect(t.status).toBe(200);
      expect(t.body.toString()).toBe('hello');
      expect(asked).toEqual([]);
      expect(accepted).toBe(1);
      const request = Buffer.concat(received).toString('latin1');
      expect(request.startsWith('GET /canned HTTP/1.1\r\n')).toBe(true);
      expect(request).toMatch(/\r\nHost: 99\.99\.99\.99\r\n/i);
    } finally {
      easy.close();
      multi.close();
      for (const p of peers) p.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fs.promises.rm(dir, { recursive: true, force: true });
    }
  });

  it('the raw trio without useConnectedSocket: opensocket returns the adopted fd, sockopt says ALREADY_CONNECTED, closesocket closes it once', async () => {
    const server = await startHttpServer();
    const multi = new Multi();
    const easy = new Easy();
    try {
      const sock = await connectTcp(server.port);
      const localPort = sock.localPort!;
      const fd = adoptSocket(sock);
      const inode = socketInode(fd)!;
      const asked: CurlSockaddr[] = [];
      const sockopt: Array<[number, number]> = [];
      const closed: number[] = [];
      let handedOut = false;
      easy.setopt('URL', UNREACHABLE);
      easy.setopt('OPENSOCKETFUNCTION', (purpose, address) => {
        asked.push({ ...address });
        if (handedOut || purpose !== CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
        handedOut = true;
        return fd;
      });
      easy.setopt('SOCKOPTFUNCTION', (s, purpose) => {
        sockopt.push([s, purpose]);
        return CURL_SOCKOPT_ALREADY_CONNECTED;
      });
      easy.setopt('CLOSESOCKETFUNCTION', (s) => {
        closed.push(s);
        closeSocket(s);
        return 0;
      });
      const t = await multi.perform(easy);
      expect(t.status).toBe(200);
      expect(t.body.toString()).toBe('hello world\n');
      expect(asked).toHaveLength(1);
      expect(asked[0]!.address).toBe('99.99.99.99');
      expect(asked[0]!.port).toBe(80);
      expect(sockopt).toEqual([[fd, CURLSOCKTYPE_IPCXN]]);
      expect(server.connections).toBe(1);
      expect(server.remotePorts).toEqual([localPort]);
      expect(closed).toEqual([]); // pooled
      easy.close();
      multi.close();
      expect(closed).toEqual([fd]);
      expect(socketInodes().has(inode)).toBe(false);
      await waitFor(() => server.openConnections() === 0, 1000, 'the server to see the close');
    } finally {
      easy.close();
      multi.close();
      await server.close();
    }
  });

  it('the raw trio with FORBID_REUSE: closesocket runs once, as the transfer ends', async () => {
    const server = await startHttpServer();
    const multi = new Multi();
    const easy = new Easy();
    try {
      const sock = await connectTcp(server.port);
      const fd = adoptSocket(sock);
      const closed: number[] = [];
      let opens = 0;
      easy.setopt('URL', UNREACHABLE);
      easy.setopt('FORBID_REUSE', true);
      easy.setopt('OPENSOCKETFUNCTION', () => (opens++ === 0 ? fd : CURL_SOCKET_BAD));
      easy.setopt('SOCKOPTFUNCTION', () => CURL_SOCKOPT_ALREADY_CONNECTED);
      easy.setopt('CLOSESOCKETFUNCTION', (s) => {
        closed.push(s);
        closeSocket(s);
        return 0;
      });
      const t = await multi.perform(easy);
      expect(t.body.toString()).toBe('hello world\n');
      expect(opens).toBe(1);
      expect(closed).toEqual([fd]);
      await waitFor(() => server.openConnections() === 0, 1000, 'the server to see the close');
      easy.close();
      multi.close();
      expect(closed).toEqual([fd]);
    } finally {
      easy.close();
      multi.close();
      await server.close();
    }
  });
});

// ---------------------------------------------------------------------------
// adoptSocket
// ---------------------------------------------------------------------------

describe('adoptSocket', () => {
  it('returns a close-on-exec duplicate; the peer sees no end or close until that fd is closed', async () => {
    const peers: net.Socket[] = [];
    const events: string[] = [];
    const server: TestServer = await startRawTcpServer((peer) => {
      peers.push(peer);
      peer.on('end', () => events.push('end'));
      peer.on('close', () => events.push('close'));
      peer.resume();
    });
    try {
      const sock = await connectTcp(server.port);
      await waitFor(() => peers.length === 1, 1000, 'accept');
      const fd = adoptSocket(sock);
      expect(Number.isInteger(fd)).toBe(true);
      expect(fd).toBeGreaterThanOrEqual(0);
      expect(isCloexec(fd)).toBe(true);
      expect(sock.destroyed).toBe(true);
      await new Promise((r) => setTimeout(r, 200));
      expect(events).toEqual([]);
      expect(server.openConnections()).toBe(1);
      // control: closing the duplicate is what ends the connection
      closeSocket(fd);
      await waitFor(() => events.includes('end'), 1000, "the peer's 'end'");
    } finally {
      await server.close();
    }
  });

  it('refuses a socket that is still connecting', async () => {
    const server = await startHttpServer();
    try {
      const sock = net.connect({ port: server.port, host: '127.0.0.1' });
      sock.on('error', () => undefined);
      expect(sock.connecting).toBe(true);
      expect(() => adoptSocket(sock)).toThrow(Error);
      expect(sock.destroyed).toBe(false);
      await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
      sock.destroy();
    } finally {
      await server.close();
    }
  });

  it('refuses a socket with unread buffered data', async () => {
    const server = await startRawTcpServer((peer) => {
      peer.write('greeting\n');
      peer.resume();
    });
    try {
      const sock = await connectTcp(server.port);
      // 'readable' makes Node read into its buffer; nothing consumes it
      sock.once('readable', () => undefined);
      await waitFor(() => sock.readableLength > 0, 1000, 'buffered data');
      expect(() => adoptSocket(sock)).toThrow(/unread/);
      expect(sock.destroyed).toBe(false);
      sock.destroy();
    } finally {
      await server.close();
    }
  });

  it('refuses a socket whose unread data is still in the kernel (paused before it connected)', async () => {
    let wrote = false;
    const server = await startRawTcpServer((peer) => {
      peer.write('greeting\n', () => {
        wrote = true;
      });
      peer.resume();
    });
    try {
      const sock = net.connect({ port: server.port, host: '127.0.0.1' });
      sock.pause(); // Node never starts reading: the greeting stays in the kernel
      await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
      await waitFor(() => wrote, 1000, 'the greeting to be written');
      await new Promise((r) => setTimeout(r, 20));
      expect(sock.readableLength).toBe(0);
      let fd: number | undefined;
      let thrown: unknown;
      try {
        fd = adoptSocket(sock);
      } catch (err) {
        thrown = err;
      }
      if (fd !== undefined) closeSocket(fd);
      sock.destroy();
      // libcurl would read 'greeting' as the start of the HTTP response
      expect(thrown).toBeInstanceOf(Error);
    } finally {
      await server.close();
    }
  });

  it('refuses a destroyed socket and anything that is not a net.Socket', async () => {
    const server = await startHttpServer();
    try {
      const sock = await connectTcp(server.port);
      sock.destroy();
      expect(() => adoptSocket(sock)).toThrow(Error);
      expect(() => adoptSocket({} as net.Socket)).toThrow(TypeError);
      expect(() => adoptSocket(3 as unknown as net.Socket)).toThrow(TypeError);
    } finally {
      await server.close();
    }
  });
});

/**
 * A new TCP connection of an HTTP(S) or WebSocket transfer sends the last
 * packet of its handshake (the client's ACK) with the request, not on its
 * own: the binding sets TCP_DEFER_ACCEPT on the socket before libcurl
 * connects it, so the server accepts the connection when the request is
 * already there. Checked on real sockets: the option on the sockets libcurl
 * connects (its own and the user's), when the server sees the connection,
 * the transfers that keep the plain handshake (a server that speaks first,
 * CONNECT_ONLY), and SOCKOPTFUNCTION turning it off.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Easy, IPPROTO_TCP, Multi, TCP_DEFER_ACCEPT, createSocket, getSocketOption, setSocketOption } from '../dist/index.js';
import { sleepSync, startChildServer } from './helpers/child-server';
import { startHttpServer, startHttpsServer, startRawTcpServer, TEST_CA_FILE, type TestServer } from './helpers/servers';

function deferAccept(fd: number): number {
  return getSocketOption(fd, IPPROTO_TCP as number, TCP_DEFER_ACCEPT as number);
}

/** An Easy for `url` on a new connection whose SOCKOPTFUNCTION notes each socket's TCP_DEFER_ACCEPT. */
function notingEasy(url: string, seen: number[]): Easy {
  return new Easy()
    .setopt('URL', url)
    .setopt('FRESH_CONNECT', true)
    .setopt('SOCKOPTFUNCTION', (fd: number) => {
      seen.push(deferAccept(fd));
      return 0;
    });
}

describe.runIf(TCP_DEFER_ACCEPT !== undefined)('the handshake ACK of new connections', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startHttpServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it('an HTTP transfer connects a socket with TCP_DEFER_ACCEPT set, its own or one from OPENSOCKETFUNCTION', async () => {
    const multi = new Multi();
    const seen: number[] = [];
    const plain = notingEasy(`${server.url}/hello`, seen);
    const opened = notingEasy(`${server.url}/hello`, seen).setopt('OPENSOCKETFUNCTION', (_purpose, address) => createSocket(address));
    try {
      expect((await multi.perform(plain)).body.toString()).toBe('hello world\n');
      expect((await multi.perform(opened)).body.toString()).toBe('hello world\n');
      expect(seen).toEqual([1, 1]);
    } finally {
      plain.close();
      opened.close();
      multi.close();
    }
  });

  it('an HTTPS transfer too', async () => {
    const https = await startHttpsServer();
    const seen: number[] = [];
    const easy = notingEasy(`${https.url}/hello`, seen).setopt('CAINFO', TEST_CA_FILE);
    try {
      expect((await easy.perform()).body.toString()).toBe('hello world\n');
      expect(seen).toEqual([1]);
    } finally {
      easy.close();
      await https.close();
    }
  });

  it('the server accepts the connection when the request arrives, unless SOCKOPTFUNCTION turns the option off', async () => {
    // PREREQFUNCTION runs after connect and before the request is sent:
    // holding it up for 100 ms (less than the kernel's 200 ms limit for the
    // held-back ACK) shows when the server accepted. The server is another
    // process, so it accepts while this thread is blocked.
    const { port, child } = await startChildServer('accept-timing-server.mjs');
    const gap = async (turnOff: boolean): Promise<number> => {
      const easy = new Easy()
        .setopt('URL', `http://127.0.0.1:${port}/`)
        .setopt('PREREQFUNCTION', () => {
          sleepSync(100);
          return 0;
        });
      if (turnOff) {
        easy.setopt('SOCKOPTFUNCTION', (fd: number) => {
          setSocketOption(fd, IPPROTO_TCP as number, TCP_DEFER_ACCEPT as number, 0);
          return 0;
        });
      }
      try {
        const body = (await easy.perform()).body.toString();
        const m = /^gap ([\d.]+)\n$/.exec(body);
        expect(m, body).not.toBeNull();
        return Number(m![1]);
      } finally {
        easy.close();
      }
    };
    try {
      expect(await gap(false)).toBeLessThan(50);  // accepted with the request
      expect(await gap(true)).toBeGreaterThanOrEqual(80);  // accepted at connect, then waited for it
    } finally {
      child.stdin!.end();
    }
  });

  it('a scheme whose server speaks first (FTP) and CONNECT_ONLY keep the plain handshake; reset() forgets CONNECT_ONLY', async () => {
    // An FTP server that says goodbye at once: the transfer fails, but only the socket matters here.
    const ftp = await startRawTcpServer((sock) => sock.end('421 closing\r\n'));
    const seen: number[] = [];
    const ftpEasy = notingEasy(`ftp://127.0.0.1:${ftp.port}/file`, seen);
    const connectOnly = notingEasy(`${server.url}/hello`, seen).setopt('CONNECT_ONLY', 1);
    try {
      await expect(ftpEasy.perform()).rejects.toThrow();
      expect(ftp.connections).toBe(1);
      await connectOnly.perform();
      expect(seen).toEqual([0, 0]);

      connectOnly.reset();
      connectOnly.setopt('URL', `${server.url}/hello`).setopt('SOCKOPTFUNCTION', (fd: number) => {
        seen.push(deferAccept(fd));
        return 0;
      });
      expect((await connectOnly.perform()).body.toString()).toBe('hello world\n');
      expect(seen).toEqual([0, 0, 1]);
    } finally {
      ftpEasy.close();
      connectOnly.close();
      await ftp.close();
    }
  });

  it('a redirect from HTTP to a scheme whose server speaks first (FTP) connects its new socket plainly', async () => {
    const ftp = await startRawTcpServer((sock) => sock.end('421 closing\r\n'));
    const target = encodeURIComponent(`ftp://127.0.0.1:${ftp.port}/file`);
    const seen: number[] = [];
    const easy = notingEasy(`${server.url}/redirect-to?url=${target}`, seen).setopt('FOLLOWLOCATION', 1);
    try {
      await expect(easy.perform()).rejects.toThrow(); // the FTP server says goodbye
      expect(ftp.connections).toBe(1);
      expect(seen).toEqual([1, 0]); // the HTTP socket deferred, the FTP one not
    } finally {
      easy.close();
      await ftp.close();
    }
  });
});

/**
 * Easy over HTTP(S) against the loopback servers: methods, bodies, headers,
 * redirects, TLS verification, connection reuse, concurrency, IPv6, Unix
 * sockets, getinfo, maxBodyBytes and a large body.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CurlError, Easy } from '../dist/index.js';
import {
  TEST_CA_FILE,
  expectedBytes,
  startHttpServer,
  startHttpsServer,
  startRawTcpServer,
  startUnixServer,
  type TestServer,
  type UnixTestServer,
  echoOf,
} from './helpers/servers';
import { rejection } from './helpers/wait';


let http: TestServer;

beforeAll(async () => {
  http = await startHttpServer();
});

afterAll(async () => {
  await http.close();
});

describe('Easy: basic HTTP', () => {
  it('GET /hello returns status, body and the response header fields', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/hello`);
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(Buffer.isBuffer(t.body)).toBe(true);
      expect(t.body.toString('utf8')).toBe('hello world\n');
      const names = t.headers.map(([name]) => name.toLowerCase());
      expect(names).toContain('content-type');
      const length = t.headers.find(([name]) => name.toLowerCase() === 'content-length');
      expect(length?.[1]).toBe(String('hello world\n'.length));
      expect(t.info.primaryIp).toBe('127.0.0.1');
      expect(t.info.primaryPort).toBe(http.port);
      expect(t.info.localIp).toBe('127.0.0.1');
      expect(t.info.sizeDownload).toBe('hello world\n'.length);
      expect(t.info.timings.total).toBeGreaterThan(0);
      expect(t.info.timings.total).toBeGreaterThanOrEqual(t.info.timings.connect);
    } finally {
      easy.close();
    }
  });

  it('reports non-2xx statuses as a successful transfer with that status', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/status/418`);
    try {
      const t = await easy.perform();
      expect(t.status).toBe(418);
      expect(t.body.toString()).toBe('status 418');
    } finally {
      easy.close();
    }
  });

  it('POST with a string body', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/echo?k=string`).setopt('POSTFIELDS', 'name=curl&x=ü');
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      const echo = echoOf(t.body);
      expect(echo.method).toBe('POST');
      expect(echo.url).toBe('/echo?k=string');
      expect(echo.body).toBe('name=curl&x=ü');
      expect(echo.headers['content-length']).toBe(String(Buffer.byteLength('name=curl&x=ü')));
      expect(t.info.sizeUpload).toBe(Buffer.byteLength('name=curl&x=ü'));
    } finally {
      easy.close();
    }
  });

  it('POST with a Buffer body containing NUL and high bytes arrives byte for byte', async () => {
    const payload = Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x80, 0x00, 0x41, 0x00, 0xc3, 0x28, 0x7f, 0x00]);
    const easy = new Easy().setopt('URL', `${http.url}/echo`).setopt('POSTFIELDS', payload);
    // POSTFIELDS is copied: changing the caller's Buffer afterwards changes nothing.
    const original = Buffer.from(payload);
    payload.fill(0x20);
    try {
      const t = await easy.perform();
      const echo = echoOf(t.body);
      expect(echo.method).toBe('POST');
      expect(echo.headers['content-length']).toBe(String(original.length));
      expect(Buffer.from(echo.bodyBase64, 'base64').equals(original)).toBe(true);
      expect(http.lastRequest?.body.equals(original)).toBe(true);
    } finally {
      easy.close();
    }
  });

  it('custom HTTPHEADER fields arrive at the server', async () => {
    const easy = new Easy()
      .setopt('URL', `${http.url}/echo`)
      .setopt('HTTPHEADER', ['X-Test-One: first', 'X-Test-Two: second value', 'Accept: application/x-test']);
    try {
      const t = await easy.perform();
      const echo = echoOf(t.body);
      expect(echo.headers['x-test-one']).toBe('first');
      expect(echo.headers['x-test-two']).toBe('second value');
      expect(echo.headers['accept']).toBe('application/x-test');
      // Raw header names keep the case that was sent.
      expect(echo.rawHeaders).toContain('X-Test-One');
    } finally {
      easy.close();
    }
  });
});

describe('Easy: string options', () => {
  it('arrive whole at every length, multi-byte characters across the binding\'s 512-byte stack buffer included', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/echo`);
    try {
      const values: string[] = ['x'.repeat(5000) + '\u20ac'];
      for (let n = 500; n <= 515; n++) {
        for (const tail of ['b', '\u00e9', '\u20ac', '\u{1f600}']) values.push('a'.repeat(n) + tail + tail);
      }
      for (const value of values) {
        easy.setopt('USERAGENT', value);
        const echo = echoOf((await easy.perform()).body);
        // Node's HTTP parser reads header bytes as latin1.
        expect(echo.headers['user-agent']).toBe(Buffer.from(value, 'utf8').toString('latin1'));
      }
    } finally {
      easy.close();
    }
  });
});

describe('Easy: redirects and headers', () => {
  it('an obsolete folded line continues the previous field, and repeated names are kept in order', async () => {
    const server = await startRawTcpServer((peer) => {
      peer.once('data', () => {
        peer.end('HTTP/1.1 200 OK\r\nX-Long: first part\r\n   second part \r\nX-Rep: a\r\nX-Rep: b\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
      });
    });
    const easy = new Easy().setopt('URL', `${server.url}/`);
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(t.headers).toEqual([
        ['X-Long', 'first part second part'],
        ['X-Rep', 'a'],
        ['X-Rep', 'b'],
        ['Content-Length', '2'],
        ['Connection', 'close'],
      ]);
    } finally {
      easy.close();
      await server.close();
    }
  });

  it('a status line whose reason phrase has a colon is no header field', async () => {
    const server = await startRawTcpServer((peer) => {
      peer.once('data', () => {
        peer.end('HTTP/1.1 200 Fine: thanks\r\nX-One: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
      });
    });
    const easy = new Easy().setopt('URL', `${server.url}/`);
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(t.body.toString()).toBe('ok');
      expect(t.headers).toEqual([
        ['X-One', '1'],
        ['Content-Length', '2'],
        ['Connection', 'close'],
      ]);
    } finally {
      easy.close();
      await server.close();
    }
  });

  it('FOLLOWLOCATION follows /redirect/3 through 4 redirects to /hello', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/redirect/3`).setopt('FOLLOWLOCATION', true);
    try {
      http.resetCounters();
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(t.body.toString()).toBe('hello world\n');
      // /redirect/3 -> /redirect/2 -> /redirect/1 -> /redirect/0 -> /hello
      expect(http.requestLog.map((r) => r.url)).toEqual(['/redirect/3', '/redirect/2', '/redirect/1', '/redirect/0', '/hello']);
      expect(t.info.redirectCount).toBe(4);
      expect(easy.getinfo('REDIRECT_COUNT')).toBe(4);
      expect(easy.getinfo('EFFECTIVE_URL')).toBe(`${http.url}/hello`);
      expect(easy.getinfo('RESPONSE_CODE')).toBe(200);
    } finally {
      easy.close();
    }
  });

  it('without FOLLOWLOCATION the 302 itself is the result', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/redirect/3`);
    try {
      const t = await easy.perform();
      expect(t.status).toBe(302);
      expect(t.headers.find(([n]) => n.toLowerCase() === 'location')?.[1]).toBe('/redirect/2');
      expect(t.info.redirectCount).toBe(0);
      expect(easy.getinfo('EFFECTIVE_URL')).toBe(`${http.url}/redirect/3`);
    } finally {
      easy.close();
    }
  });

  it('Transfer.headers keeps order and repeated names', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/headers`);
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      const lower = t.headers.map(([n, v]) => [n.toLowerCase(), v] as const);
      const cookies = lower.filter(([n]) => n === 'set-cookie').map(([, v]) => v);
      expect(cookies).toEqual(['a=1; Path=/', 'b=2; Path=/']);
      const multi = lower.filter(([n]) => n === 'x-multi').map(([, v]) => v);
      expect(multi).toEqual(['a', 'b']);
      expect(lower.find(([n]) => n === 'x-case')?.[1]).toBe('Value');
      // Order as sent by the server: content-type, content-length, set-cookie x2, x-multi x2, x-case, ...
      const names = lower.map(([n]) => n);
      const idx = (name: string, from = 0): number => names.indexOf(name, from);
      expect(idx('content-type')).toBeGreaterThanOrEqual(0);
      expect(idx('content-type')).toBeLessThan(idx('content-length'));
      expect(idx('content-length')).toBeLessThan(idx('set-cookie'));
      expect(idx('set-cookie', idx('set-cookie') + 1)).toBe(idx('set-cookie') + 1);
      expect(idx('set-cookie') + 1).toBeLessThan(idx('x-multi'));
      expect(idx('x-multi', idx('x-multi') + 1)).toBe(idx('x-multi') + 1);
      expect(idx('x-multi') + 1).toBeLessThan(idx('x-case'));
      // The status line and the terminating blank line are not fields.
      for (const [n, v] of t.headers) {
        expect(n).not.toMatch(/^HTTP\//);
        expect(n).not.toBe('');
        expect(v).not.toMatch(/[\r\n]/);
      }
    } finally {
      easy.close();
    }
  });

  it('Transfer.headers and .info are made when first read and stay the transfer\'s own', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/headers`);
    try {
      const first = await easy.perform();
      easy.setopt('URL', `${http.url}/hello`);
      const second = await easy.perform();  // reuses the handle before `first.headers` is read
      const fields = first.headers;
      expect(first.headers).toBe(fields);  // parsed once, the same array on every read
      expect(fields.filter(([n]) => n.toLowerCase() === 'x-multi').map(([, v]) => v)).toEqual(['a', 'b']);
      expect(second.headers.some(([n]) => n.toLowerCase() === 'x-multi')).toBe(false);
      expect('headers' in first).toBe(true);
      // info: a snapshot of this transfer's numbers, not of the handle's later ones.
      const info = first.info;
      expect(first.info).toBe(info);
      expect(info.sizeDownload).toBe(first.body.length);
      expect(second.info.sizeDownload).toBe(second.body.length);
      expect(info.sizeDownload).not.toBe(second.info.sizeDownload);
      expect(info.primaryPort).toBe(Number(new URL(http.url).port));
      expect(info.timings.total).toBeGreaterThan(0);
      // A plain object's field: assignable, and part of its JSON.
      const json = JSON.parse(JSON.stringify(second)) as { status: number; headers: Array<[string, string]>; info: { primaryPort: number } };
      expect(json.status).toBe(200);
      expect(json.headers).toEqual(second.headers);
      expect(json.info.primaryPort).toBe(second.info.primaryPort);
      second.headers = [['x-own', '1']];
      expect(second.headers).toEqual([['x-own', '1']]);
      second.info = { ...second.info, redirectCount: 7 };
      expect(second.info.redirectCount).toBe(7);
    } finally {
      easy.close();
    }
  });

  it('after redirects, Transfer.headers holds only the final response fields', async () => {
    const easy = new Easy()
      .setopt('URL', `${http.url}/redirect-to?url=${encodeURIComponent('/redirect/1')}&status=301`)
      .setopt('FOLLOWLOCATION', true);
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(t.body.toString()).toBe('hello world\n');
      expect(t.info.redirectCount).toBe(3);
      const names = t.headers.map(([n]) => n.toLowerCase());
      expect(names).not.toContain('location');
      // Exactly one response's worth of fields: one content-type, one content-length.
      expect(names.filter((n) => n === 'content-type')).toHaveLength(1);
      expect(names.filter((n) => n === 'content-length')).toHaveLength(1);
      expect(t.headers.find(([n]) => n.toLowerCase() === 'content-length')?.[1]).toBe(String('hello world\n'.length));
    } finally {
      easy.close();
    }
  });

  it('after a redirect to /headers, the repeated fields are those of /headers only', async () => {
    const easy = new Easy()
      .setopt('URL', `${http.url}/redirect-to?url=${encodeURIComponent('/headers')}`)
      .setopt('FOLLOWLOCATION', true);
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      const lower = t.headers.map(([n, v]) => [n.toLowerCase(), v] as const);
      expect(lower.filter(([n]) => n === 'set-cookie').map(([, v]) => v)).toEqual(['a=1; Path=/', 'b=2; Path=/']);
      expect(lower.filter(([n]) => n === 'x-multi').map(([, v]) => v)).toEqual(['a', 'b']);
      expect(lower.filter(([n]) => n === 'content-type')).toHaveLength(1);
      expect(lower.map(([n]) => n)).not.toContain('location');
    } finally {
      easy.close();
    }
  });
});

describe('Easy: HTTPS against the self-signed loopback server', () => {
  let https: TestServer;

  beforeAll(async () => {
    https = await startHttpsServer();
  });

  afterAll(async () => {
    await https.close();
  });

  it('succeeds with CAINFO = TEST_CA_FILE', async () => {
    const easy = new Easy().setopt('URL', `${https.url}/hello`).setopt('CAINFO', TEST_CA_FILE);
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(t.body.toString()).toBe('hello world\n');
      expect(t.info.timings.appConnect).toBeGreaterThan(0);
      expect(easy.getinfo('EFFECTIVE_URL')).toBe(`${https.url}/hello`);
    } finally {
      easy.close();
    }
  });

  it('succeeds for https://localhost with CAINFO (name verified against the SAN)', async () => {
    const easy = new Easy()
      .setopt('URL', `https://localhost:${https.port}/hello`)
      .setopt('RESOLVE', [`localhost:${https.port}:127.0.0.1`])
      .setopt('CAINFO', TEST_CA_FILE);
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(t.body.toString()).toBe('hello world\n');
    } finally {
      easy.close();
    }
  });

  it('fails without CAINFO with CURLE_PEER_FAILED_VERIFICATION', async () => {
    const easy = new Easy().setopt('URL', `${https.url}/hello`);
    try {
      const err = await rejection(easy.perform());
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLE_PEER_FAILED_VERIFICATION');
      expect((err as CurlError).curlCode).toBe(60);
      expect((err as CurlError).message.length).toBeGreaterThan(0);
    } finally {
      easy.close();
    }
  });
});

describe('Easy: connection reuse and concurrency', () => {
  it('100 sequential performs on one Easy use exactly one connection', async () => {
    const server = await startHttpServer();
    const easy = new Easy().setopt('URL', `${server.url}/connection-info`);
    try {
      const numConnects: number[] = [];
      const localPorts = new Set<number>();
      for (let i = 0; i < 100; i++) {
        const t = await easy.perform();
        expect(t.status).toBe(200);
        const info = JSON.parse(t.body.toString()) as { connectionIndex: number; requestIndexOnConnection: number };
        expect(info.connectionIndex).toBe(1);
        expect(info.requestIndexOnConnection).toBe(i + 1);
        numConnects.push(t.info.numConnects);
        localPorts.add(t.info.localPort);
      }
      expect(server.connections).toBe(1);
      expect(server.requests).toBe(100);
      expect(numConnects[0]).toBe(1);
      expect(numConnects.slice(1).every((n) => n === 0)).toBe(true);
      expect(localPorts.size).toBe(1);
      expect([...localPorts][0]).toBe(server.remotePorts[0]);
    } finally {
      easy.close();
      await server.close();
    }
  });

  it('200 concurrent performs (one Easy each) each get their own body', async () => {
    const server = await startHttpServer();
    const easies = Array.from({ length: 200 }, (_, i) => new Easy().setopt('URL', `${server.url}/bytes?n=${1000 + i * 37}`));
    try {
      const transfers = await Promise.all(easies.map((e) => e.perform()));
      expect(transfers).toHaveLength(200);
      transfers.forEach((t, i) => {
        const n = 1000 + i * 37;
        expect(t.status).toBe(200);
        expect(t.body.length).toBe(n);
        expect(t.body.equals(expectedBytes(n))).toBe(true);
        expect(t.info.sizeDownload).toBe(n);
      });
      expect(server.requests).toBe(200);
      const urls = server.requestLog.map((r) => r.url).sort();
      expect(new Set(urls).size).toBe(200);
    } finally {
      for (const e of easies) e.close();
      await server.close();
    }
  });

  it('200 concurrent /echo performs with distinct queries get matching replies', async () => {
    const easies = Array.from({ length: 200 }, (_, i) => new Easy().setopt('URL', `${http.url}/echo?id=${i}`));
    try {
      const transfers = await Promise.all(easies.map((e) => e.perform()));
      transfers.forEach((t, i) => {
        expect(t.status).toBe(200);
        expect(echoOf(t.body).url).toBe(`/echo?id=${i}`);
      });
    } finally {
      for (const e of easies) e.close();
    }
  });
});

describe('Easy: other transports', () => {
  it('works against an IPv6 ::1 server', async () => {
    const server6 = await startHttpServer({ host: '::1' });
    const easy = new Easy().setopt('URL', `${server6.url}/connection-info`);
    try {
      expect(server6.url.startsWith('http://[::1]:')).toBe(true);
      const t = await easy.perform();
      expect(t.status).toBe(200);
      const info = JSON.parse(t.body.toString()) as { remoteAddress: string; remotePort: number };
      expect(info.remoteAddress).toBe('::1');
      expect(t.info.primaryIp).toBe('::1');
      expect(t.info.localIp).toBe('::1');
      expect(t.info.localPort).toBe(info.remotePort);
      expect(easy.getinfo('PRIMARY_IP')).toBe('::1');
      expect(server6.connections).toBe(1);
    } finally {
      easy.close();
      await server6.close();
    }
  });

  it('UNIX_SOCKET_PATH reaches the Unix socket server', async () => {
    const unix: UnixTestServer = await startUnixServer();
    const easy = new Easy().setopt('URL', 'http://localhost/echo?via=unix').setopt('UNIX_SOCKET_PATH', unix.path);
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      const echo = echoOf(t.body);
      expect(echo.url).toBe('/echo?via=unix');
      expect(echo.headers.host).toBe('localhost');
      expect(unix.connections).toBe(1);
      expect(unix.requests).toBe(1);
      // Reuse works over the Unix socket too.
      const t2 = await easy.perform();
      expect(t2.status).toBe(200);
      expect(unix.connections).toBe(1);
      expect(t2.info.numConnects).toBe(0);
    } finally {
      easy.close();
      await unix.close();
    }
  });
});

describe('Easy: getinfo after a transfer', () => {
  it('RESPONSE_CODE, PRIMARY_IP, LOCAL_PORT, NUM_CONNECTS, EFFECTIVE_URL', async () => {
    const server = await startHttpServer();
    const easy = new Easy().setopt('URL', `${server.url}/status/201`);
    try {
      const t = await easy.perform();
      expect(t.status).toBe(201);
      expect(easy.getinfo('RESPONSE_CODE')).toBe(201);
      expect(easy.getinfo('PRIMARY_IP')).toBe('127.0.0.1');
      expect(easy.getinfo('PRIMARY_PORT')).toBe(server.port);
      expect(easy.getinfo('LOCAL_PORT')).toBe(server.remotePorts[0]);
      expect(easy.getinfo('LOCAL_PORT')).toBe(t.info.localPort);
      expect(easy.getinfo('NUM_CONNECTS')).toBe(1);
      expect(easy.getinfo('EFFECTIVE_URL')).toBe(`${server.url}/status/201`);

      // Second transfer on the same handle: reused connection, new URL.
      easy.setopt('URL', `${server.url}/hello`);
      await easy.perform();
      expect(easy.getinfo('RESPONSE_CODE')).toBe(200);
      expect(easy.getinfo('NUM_CONNECTS')).toBe(0);
      expect(easy.getinfo('LOCAL_PORT')).toBe(server.remotePorts[0]);
      expect(easy.getinfo('EFFECTIVE_URL')).toBe(`${server.url}/hello`);
      expect(server.connections).toBe(1);
    } finally {
      easy.close();
      await server.close();
    }
  });
});

describe('Easy: maxBodyBytes', () => {
  it('a 100000-byte body over maxBodyBytes 1000 fails with CURLE_FILESIZE_EXCEEDED', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/bytes?n=100000`);
    try {
      const err = await rejection(easy.perform({ maxBodyBytes: 1000 }));
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLE_FILESIZE_EXCEEDED');
      expect((err as CurlError).curlCode).toBe(63);
      // The limit's own message, not libcurl's text for the write error it caused.
      expect((err as CurlError).message).toBe('the response body is larger than maxBodyBytes (1000 bytes)');
    } finally {
      easy.close();
    }
  });

  it('a 100000-byte body with maxBodyBytes 100000 succeeds', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/bytes?n=100000`);
    try {
      const t = await easy.perform({ maxBodyBytes: 100000 });
      expect(t.status).toBe(200);
      expect(t.body.equals(expectedBytes(100000))).toBe(true);
    } finally {
      easy.close();
    }
  });

  it('the limit also applies to a chunked body without Content-Length', async () => {
    // /drip sends 1 KiB chunks without a length: 5 chunks = 5120 bytes.
    const easy = new Easy().setopt('URL', `${http.url}/drip?chunks=5&interval=10`);
    try {
      const err = await rejection(easy.perform({ maxBodyBytes: 2048 }));
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLE_FILESIZE_EXCEEDED');
      const ok = await easy.perform({ maxBodyBytes: 5120 });
      expect(ok.body.length).toBe(5120);
    } finally {
      easy.close();
    }
  });

  it('the limit also applies to a body streamed to a JS WRITEFUNCTION, which never sees more', async () => {
    let seen = 0;
    const easy = new Easy().setopt('WRITEFUNCTION', (chunk: Buffer) => {
      seen += chunk.length;
    });
    try {
      for (const url of [`${http.url}/bytes?n=100000`, `${http.url}/drip?chunks=5&interval=10`]) {
        seen = 0;
        easy.setopt('URL', url);
        const err = await rejection(easy.perform({ maxBodyBytes: 2048 }));
        expect(err).toBeInstanceOf(CurlError);
        expect((err as CurlError).code).toBe('CURLE_FILESIZE_EXCEEDED');
        expect((err as CurlError).message).toContain('maxBodyBytes (2048 bytes)');
        expect(seen).toBeLessThanOrEqual(2048);
      }
      // The count starts again with each transfer.
      seen = 0;
      const ok = await easy.perform({ maxBodyBytes: 5120 });
      expect(ok.status).toBe(200);
      expect(seen).toBe(5120);
    } finally {
      easy.close();
    }
  });
});

describe('Easy: large body', () => {
  it('a 10 MiB body arrives intact', async () => {
    const n = 10 * 1024 * 1024;
    const easy = new Easy().setopt('URL', `${http.url}/bytes?n=${n}`);
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(t.body.length).toBe(n);
      expect(t.body.equals(expectedBytes(n))).toBe(true);
      expect(t.info.sizeDownload).toBe(n);
    } finally {
      easy.close();
    }
  }, 60_000);
});

/**
 * Self-checks of the test helpers, using Node's own http/https/net clients
 * (no libcurl involved).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  TEST_CA_FILE,
  TEST_KEY_FILE,
  expectedBytes,
  startHttpServer,
  startHttpsServer,
  startRawTcpServer,
  startUnixServer,
  type TestServer,
} from './servers';
import {
  fdFlags,
  fdsOfPid,
  isCloexec,
  listFds,
  listSocketFds,
  openFdCount,
  socketInode,
  socketInodesOfPid,
} from './fds';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  text: string;
}

interface FetchOpts {
  method?: string;
  body?: string | Buffer;
  headers?: http.OutgoingHttpHeaders;
  agent?: http.Agent | false;
  socketPath?: string;
  ca?: Buffer;
}

function request(base: string, pathAndQuery: string, opts: FetchOpts = {}): Promise<Reply> {
  const u = new URL(pathAndQuery, base);
  const isHttps = u.protocol === 'https:';
  const mod = isHttps ? https : http;
  return new Promise<Reply>((resolve, reject) => {
    const req = mod.request(
      {
        protocol: u.protocol,
        hostname: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port,
        path: u.pathname + u.search,
        method: opts.method ?? 'GET',
        headers: opts.headers,
        agent: opts.agent ?? false,
        socketPath: opts.socketPath,
        ...(isHttps ? { ca: opts.ca, servername: 'localhost' } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body,
            text: body.toString('utf8'),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function waitFor(pred: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('startHttpServer routes', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startHttpServer();
  });
  afterAll(async () => {
    await srv.close();
  });
  afterEach(() => {
    srv.resetCounters();
  });

  it('exposes url/host/port', () => {
    expect(srv.host).toBe('127.0.0.1');
    expect(srv.port).toBeGreaterThan(0);
    expect(srv.url).toBe(`http://127.0.0.1:${srv.port}`);
  });

  it('GET /hello', async () => {
    const r = await request(srv.url, '/hello');
    expect(r.status).toBe(200);
    expect(r.text).toBe('hello world\n');
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.headers['content-length']).toBe('12');
  });

  it('/echo reflects method, url, headers and body', async () => {
    const payload = Buffer.from([0, 1, 2, 0xff, 0x41]);
    const r = await request(srv.url, '/echo?a=1&b=two', {
      method: 'POST',
      body: payload,
      headers: { 'X-Test': 'yes', 'content-type': 'application/octet-stream' },
    });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    const j = JSON.parse(r.text) as {
      method: string;
      url: string;
      headers: Record<string, string>;
      rawHeaders: string[];
      body: string;
      bodyBase64: string;
    };
    expect(j.method).toBe('POST');
    expect(j.url).toBe('/echo?a=1&b=two');
    expect(j.headers['x-test']).toBe('yes');
    expect(j.rawHeaders).toContain('X-Test');
    expect(Buffer.from(j.bodyBase64, 'base64').equals(payload)).toBe(true);

    const t = await request(srv.url, '/echo', { method: 'PUT', body: 'héllo' });
    const tj = JSON.parse(t.text) as { method: string; body: string };
    expect(tj.method).toBe('PUT');
    expect(tj.body).toBe('héllo');

    expect(srv.lastRequest?.method).toBe('PUT');
    expect(srv.lastRequest?.url).toBe('/echo');
    expect(srv.lastRequest?.body.toString('utf8')).toBe('héllo');
    expect(srv.lastRequest?.rawHeaders.length).toBeGreaterThan(0);
    expect(srv.lastRequest?.headers.host).toBe(`127.0.0.1:${srv.port}`);
  });

  it('/status/:code', async () => {
    for (const code of [200, 201, 400, 404, 418, 500, 503]) {
      const r = await request(srv.url, `/status/${code}`);
      expect(r.status).toBe(code);
      expect(r.text).toBe(`status ${code}`);
    }
    const nc = await request(srv.url, '/status/204');
    expect(nc.status).toBe(204);
    expect(nc.body.length).toBe(0);
  });

  it('/redirect/:n chains down to /hello', async () => {
    const r3 = await request(srv.url, '/redirect/3');
    expect(r3.status).toBe(302);
    expect(r3.headers.location).toBe('/redirect/2');
    const r0 = await request(srv.url, '/redirect/0');
    expect(r0.status).toBe(302);
    expect(r0.headers.location).toBe('/hello');
  });

  it('/redirect-to?url=', async () => {
    const target = `${srv.url}/echo?x=1`;
    const r = await request(srv.url, `/redirect-to?url=${encodeURIComponent(target)}`);
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe(target);
    const r307 = await request(srv.url, `/redirect-to?status=307&url=${encodeURIComponent(target)}`);
    expect(r307.status).toBe(307);
    expect(r307.headers.location).toBe(target);
  });

  it('/slow?ms=N waits', async () => {
    const t0 = Date.now();
    const r = await request(srv.url, '/slow?ms=150');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(r.status).toBe(200);
    expect(r.text).toBe('slow');
  });

  it('/slow survives a client abort', async () => {
    await new Promise<void>((resolve) => {
      const req = http.get(`${srv.url}/slow?ms=5000`, { agent: false });
      req.on('error', () => resolve());
      setTimeout(() => req.destroy(), 50);
    });
    await waitFor(() => srv.openConnections() === 0);
    const r = await request(srv.url, '/hello');
    expect(r.status).toBe(200);
  });

  it('/drip sends chunked 1 KiB chunks over time', async () => {
    const t0 = Date.now();
    const r = await request(srv.url, '/drip?chunks=4&interval=40');
    expect(r.status).toBe(200);
    expect(r.headers['transfer-encoding']).toBe('chunked');
    expect(r.headers['content-length']).toBeUndefined();
    expect(r.text).toBe('x'.repeat(4096));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(110);
  });

  it('/drip can be aborted mid-transfer', async () => {
    let got = 0;
    await new Promise<void>((resolve) => {
      const req = http.get(`${srv.url}/drip?chunks=1000&interval=20`, { agent: false }, (res) => {
        res.on('data', (c: Buffer) => {
          got += c.length;
          if (got >= 2048) req.destroy();
        });
        res.on('error', () => undefined);
        res.on('close', () => resolve());
      });
      req.on('error', () => resolve());
    });
    expect(got).toBeGreaterThanOrEqual(2048);
    await waitFor(() => srv.openConnections() === 0);
  });

  it('/bytes?n=N sends deterministic content', async () => {
    for (const n of [0, 1, 250, 251, 252, 100_000, 3_000_000]) {
      const r = await request(srv.url, `/bytes?n=${n}`);
      expect(r.status).toBe(200);
      expect(r.headers['content-length']).toBe(String(n));
      expect(r.body.length).toBe(n);
      expect(r.body.equals(expectedBytes(n))).toBe(true);
    }
    const b = await request(srv.url, '/bytes?n=600');
    expect(b.body[0]).toBe(0);
    expect(b.body[250]).toBe(250);
    expect(b.body[251]).toBe(0);
    expect(b.body[599]).toBe(599 % 251);
    const h = await request(srv.url, '/bytes?n=1000', { method: 'HEAD' });
    expect(h.headers['content-length']).toBe('1000');
    expect(h.body.length).toBe(0);
  });

  it('/headers repeats header names', async () => {
    const r = await request(srv.url, '/headers');
    expect(r.status).toBe(200);
    expect(r.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    const pairs: [string, string][] = [];
    for (let i = 0; i < r.rawHeaders.length; i += 2) {
      pairs.push([r.rawHeaders[i] as string, r.rawHeaders[i + 1] as string]);
    }
    expect(pairs.filter(([k]) => k === 'set-cookie')).toHaveLength(2);
    expect(pairs.filter(([k]) => k === 'x-multi').map(([, v]) => v)).toEqual(['a', 'b']);
    expect(pairs).toContainEqual(['x-case', 'Value']);
  });

  it('/connection-info reports the connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const a = JSON.parse((await request(srv.url, '/connection-info', { agent })).text) as {
        remotePort: number;
        remoteAddress: string;
        connectionIndex: number;
        requestIndexOnConnection: number;
      };
      const b = JSON.parse((await request(srv.url, '/connection-info', { agent })).text) as typeof a;
      expect(a.remoteAddress).toBe('127.0.0.1');
      expect(a.connectionIndex).toBe(1);
      expect(a.requestIndexOnConnection).toBe(1);
      expect(b.connectionIndex).toBe(1);
      expect(b.requestIndexOnConnection).toBe(2);
      expect(b.remotePort).toBe(a.remotePort);
      expect(srv.remotePorts).toEqual([a.remotePort]);
    } finally {
      agent.destroy();
    }
  });

  it('/close closes the connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const r = await request(srv.url, '/close', { agent });
      expect(r.status).toBe(200);
      expect(r.headers.connection).toBe('close');
      await waitFor(() => srv.openConnections() === 0);
      await request(srv.url, '/hello', { agent });
      expect(srv.connections).toBe(2);
    } finally {
      agent.destroy();
    }
  });

  it('unknown paths give 404', async () => {
    const r = await request(srv.url, '/nope');
    expect(r.status).toBe(404);
  });
});

describe('counters and keep-alive', () => {
  it('10 sequential keep-alive requests use 1 connection', async () => {
    const srv = await startHttpServer();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 10; i++) {
        const r = await request(srv.url, '/hello', { agent });
        expect(r.status).toBe(200);
      }
      expect(srv.requests).toBe(10);
      expect(srv.connections).toBe(1);
      expect(srv.remotePorts).toHaveLength(1);
      expect(srv.openConnections()).toBe(1);
      expect(srv.requestLog.map((e) => e.url)).toEqual(Array(10).fill('/hello'));
      expect(srv.requestLog.every((e) => e.connectionIndex === 1)).toBe(true);

      srv.resetCounters();
      expect(srv.requests).toBe(0);
      expect(srv.connections).toBe(0);
      expect(srv.remotePorts).toEqual([]);
      expect(srv.lastRequest).toBeUndefined();
      expect(srv.requestLog).toEqual([]);
      expect(srv.openConnections()).toBe(1);

      agent.destroy();
      await waitFor(() => srv.openConnections() === 0);
    } finally {
      agent.destroy();
      await srv.close();
    }
  });

  it('without keep-alive every request is a new connection', async () => {
    const srv = await startHttpServer();
    try {
      for (let i = 0; i < 3; i++) await request(srv.url, '/hello', { agent: false });
      expect(srv.requests).toBe(3);
      expect(srv.connections).toBe(3);
      expect(new Set(srv.remotePorts).size).toBe(3);
      await waitFor(() => srv.openConnections() === 0);
    } finally {
      await srv.close();
    }
  });

  it('keepAliveTimeoutMs closes idle connections', async () => {
    const srv = await startHttpServer({ keepAliveTimeoutMs: 100 });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await request(srv.url, '/hello', { agent });
      expect(srv.openConnections()).toBe(1);
      await waitFor(() => srv.openConnections() === 0, 3000);
    } finally {
      agent.destroy();
      await srv.close();
    }
  });

  it('close() tears down busy connections and is idempotent', async () => {
    const srv = await startHttpServer();
    const pending = request(srv.url, '/drip?chunks=1000&interval=50').then(
      () => 'done',
      () => 'error',
    );
    await waitFor(() => srv.requests === 1);
    await srv.close();
    await srv.close();
    expect(await pending).toBe('error');
    expect(srv.openConnections()).toBe(0);
  });

  it('listens on ::1', async () => {
    const srv = await startHttpServer({ host: '::1' });
    try {
      expect(srv.url).toBe(`http://[::1]:${srv.port}`);
      const r = await request(srv.url, '/connection-info');
      const j = JSON.parse(r.text) as { remoteAddress: string };
      expect(j.remoteAddress).toBe('::1');
    } finally {
      await srv.close();
    }
  });
});

describe('startHttpsServer', () => {
  it('serves TLS verified with TEST_CA_FILE', async () => {
    expect(fs.existsSync(TEST_CA_FILE)).toBe(true);
    expect(fs.existsSync(TEST_KEY_FILE)).toBe(true);
    const ca = fs.readFileSync(TEST_CA_FILE);
    const srv = await startHttpsServer();
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
    try {
      expect(srv.url).toBe(`https://127.0.0.1:${srv.port}`);
      const r = await request(srv.url, '/hello', { ca });
      expect(r.text).toBe('hello world\n');

      srv.resetCounters();
      for (let i = 0; i < 5; i++) {
        const c = JSON.parse((await request(srv.url, '/connection-info', { agent })).text) as {
          connectionIndex: number;
          requestIndexOnConnection: number;
        };
        expect(c.connectionIndex).toBe(1);
        expect(c.requestIndexOnConnection).toBe(i + 1);
      }
      expect(srv.connections).toBe(1);
      expect(srv.requests).toBe(5);
      agent.destroy();
      await waitFor(() => srv.openConnections() === 0);

      // Without the CA the handshake must fail.
      await expect(request(srv.url, '/hello')).rejects.toThrow();
    } finally {
      agent.destroy();
      await srv.close();
    }
  });

  it('the certificate covers 127.0.0.1, ::1 and localhost', async () => {
    const ca = fs.readFileSync(TEST_CA_FILE);
    const srv6 = await startHttpsServer({ host: '::1' });
    try {
      expect(srv6.url).toBe(`https://[::1]:${srv6.port}`);
      const r = await request(srv6.url, '/hello', { ca });
      expect(r.status).toBe(200);
      const byName = await request(`https://localhost:${srv6.port}`, '/hello', { ca }).catch(() => undefined);
      // 'localhost' may resolve to 127.0.0.1 first; only check the name is accepted when it connects.
      if (byName !== undefined) expect(byName.status).toBe(200);
    } finally {
      await srv6.close();
    }
  });

  it('close() tears down open TLS connections', async () => {
    const ca = fs.readFileSync(TEST_CA_FILE);
    const srv = await startHttpsServer();
    const agent = new https.Agent({ keepAlive: true, ca });
    await request(srv.url, '/hello', { agent });
    expect(srv.openConnections()).toBe(1);
    await srv.close();
    expect(srv.openConnections()).toBe(0);
    agent.destroy();
  });
});

describe('startUnixServer', () => {
  it('serves HTTP on a Unix socket and removes it on close', async () => {
    const srv = await startUnixServer();
    expect(srv.url).toBe('http://localhost');
    expect(fs.statSync(srv.path).isSocket()).toBe(true);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 3; i++) {
        const r = await request(srv.url, '/hello', { socketPath: srv.path, agent });
        expect(r.text).toBe('hello world\n');
      }
      expect(srv.requests).toBe(3);
      expect(srv.connections).toBe(1);
      expect(srv.remotePorts).toEqual([0]);
      const info = JSON.parse((await request(srv.url, '/connection-info', { socketPath: srv.path, agent })).text) as {
        connectionIndex: number;
        requestIndexOnConnection: number;
        remotePort: number | null;
      };
      expect(info).toMatchObject({ connectionIndex: 1, requestIndexOnConnection: 4, remotePort: null });
    } finally {
      agent.destroy();
      await srv.close();
    }
    expect(fs.existsSync(srv.path)).toBe(false);
  });
});

describe('startRawTcpServer', () => {
  it('counts connections and hands sockets to the callback', async () => {
    const canned = 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\ncanned';
    const srv = await startRawTcpServer((sock) => {
      sock.once('data', () => sock.end(canned));
    });
    try {
      const r = await request(srv.url, '/anything');
      expect(r.status).toBe(200);
      expect(r.text).toBe('canned');
      const r2 = await request(srv.url, '/again');
      expect(r2.status).toBe(200);
      expect(srv.connections).toBe(2);
      expect(srv.remotePorts).toHaveLength(2);
      expect(srv.requests).toBe(0);
      expect(srv.lastRequest).toBeUndefined();
      await waitFor(() => srv.openConnections() === 0);
    } finally {
      await srv.close();
    }
  });

  it('close() destroys sockets the callback left open', async () => {
    const srv = await startRawTcpServer(() => {
      /* never answer */
    });
    const client = net.connect(srv.port, '127.0.0.1');
    client.on('error', () => undefined);
    const closed = new Promise<void>((r) => client.once('close', () => r()));
    await waitFor(() => srv.openConnections() === 1);
    await srv.close();
    await closed;
    expect(srv.openConnections()).toBe(0);
  });
});

describe('fds helpers', () => {
  it('lists fds and counts them', () => {
    const fds = listFds();
    expect(fds.size).toBe(openFdCount());
    expect(fds.has(0) || fds.has(1) || fds.has(2)).toBe(true);
    const before = openFdCount();
    const fd = fs.openSync('/dev/null', 'r');
    try {
      expect(openFdCount()).toBe(before + 1);
      expect(listFds().get(fd)).toBe('/dev/null');
      expect(socketInode(fd)).toBeUndefined();
      expect(isCloexec(fd)).toBe(true);
      expect(fdFlags(fd)).toBeTypeOf('number');
    } finally {
      fs.closeSync(fd);
    }
    expect(openFdCount()).toBe(before);
    expect(socketInode(fd)).toBeUndefined();
    expect(isCloexec(fd)).toBeUndefined();
  });

  it('finds socket inodes and checks a child does not inherit them', async () => {
    const srv = await startRawTcpServer(() => undefined);
    const client = net.connect(srv.port, '127.0.0.1');
    try {
      await new Promise<void>((r) => client.once('connect', () => r()));
      const fd = (client as unknown as { _handle: { fd: number } })._handle.fd;
      const inode = socketInode(fd);
      expect(inode).toBeTypeOf('number');
      expect(listSocketFds().get(fd)).toBe(inode);
      expect(socketInodesOfPid().has(inode as number)).toBe(true);

      const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)'], { stdio: 'ignore' });
      try {
        await new Promise<void>((r) => child.once('spawn', () => r()));
        const pid = child.pid as number;
        // Wait until the child has exec'd node (its fd table is then final).
        await waitFor(() => {
          try {
            return fs.readlinkSync(`/proc/${pid}/exe`) === fs.readlinkSync('/proc/self/exe') && fdsOfPid(pid).size > 0;
          } catch {
            return false;
          }
        });
        expect(fdsOfPid(pid).size).toBeGreaterThan(0);
        expect(socketInodesOfPid(pid).has(inode as number)).toBe(false);
      } finally {
        child.kill();
      }
    } finally {
      client.destroy();
      await srv.close();
    }
    expect(fdsOfPid(2 ** 22 + 12345).size).toBe(0);
  });
});

/**
 * In-process loopback servers for the test suites.
 *
 * Every server here runs on the test process's own event loop, so libcurl
 * transfers driven by the addon (also on that loop) can talk to them directly.
 * Only loopback addresses (127.0.0.1, ::1) and Unix sockets in a fresh temp
 * directory are ever used.
 *
 * The HTTPS certificate lives in test/fixtures/ (server.key, server.crt). It is
 * a self-signed RSA-2048 certificate for CN=localhost with
 * subjectAltName IP:127.0.0.1, IP:::1, DNS:localhost, valid 2020-01-01 to
 * 2120-01-01. It is its own CA: pass TEST_CA_FILE as libcurl's CAINFO.
 * It was generated once with the openssl CLI (`openssl req -new` for the key
 * and CSR, then `openssl ca -selfsign -startdate 20200101000000Z
 * -enddate 21200101000000Z` with basicConstraints=critical,CA:TRUE,
 * keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign,
 * extendedKeyUsage=serverAuth and the subjectAltName above). It is never
 * generated at test time.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

// ---------------------------------------------------------------------------
// Fixture paths
// ---------------------------------------------------------------------------

/*
 * vitest (vite-node) provides __dirname to the modules it runs, and so does
 * CommonJS. The cwd-based fallback covers any other runner started from the
 * package root.
 */
const HELPERS_DIR: string =
  typeof __dirname === 'string' && __dirname.length > 0
    ? __dirname
    : path.join(process.cwd(), 'test', 'helpers');

/** Absolute path of test/fixtures/. */
export const FIXTURES_DIR: string = path.resolve(HELPERS_DIR, '..', 'fixtures');
/** Absolute path of the self-signed server certificate; use it as the CA file. */
export const TEST_CA_FILE: string = path.join(FIXTURES_DIR, 'server.crt');
/** Same file as TEST_CA_FILE, under its role as the server certificate. */
export const TEST_CERT_FILE: string = TEST_CA_FILE;
/** Absolute path of the server's private key (unencrypted PEM). */
export const TEST_KEY_FILE: string = path.join(FIXTURES_DIR, 'server.key');

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

export type LoopbackHost = '127.0.0.1' | '::1';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

export interface RequestLogEntry {
  method: string;
  url: string;
  /** 1-based index of the connection the request came in on (see /connection-info). */
  connectionIndex: number;
}

export interface TestServer {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:PORT or http://[::1]:PORT. */
  url: string;
  /** Listening port (0 for Unix socket servers). */
  port: number;
  /** Listening host ('127.0.0.1', '::1', or 'localhost' for Unix socket servers). */
  host: string;
  /** Total connections accepted since start or the last resetCounters(). */
  connections: number;
  /** Connections currently open (not affected by resetCounters()). */
  openConnections(): number;
  /** Total HTTP requests received since start or the last resetCounters() (always 0 for raw TCP servers). */
  requests: number;
  /** Client port of each accepted connection, in accept order (0 for Unix socket connections). */
  remotePorts: number[];
  /** The most recent request whose body has been fully received (HTTP servers only). */
  lastRequest?: RecordedRequest;
  /** Every request received since start or the last resetCounters(), in arrival order. */
  requestLog: RequestLogEntry[];
  /** Stops listening, destroys every open connection and resolves once fully closed. Idempotent. */
  close(): Promise<void>;
  /** Zeroes connections, requests, remotePorts, requestLog and clears lastRequest. */
  resetCounters(): void;
}

export interface UnixTestServer extends TestServer {
  /** Filesystem path of the listening Unix socket (inside a fresh temp dir removed by close()). */
  path: string;
}

export interface HttpServerOptions {
  /** Loopback address to listen on. Default '127.0.0.1'. */
  host?: LoopbackHost;
  /**
   * Idle keep-alive timeout of the server in ms. Default 30000 (longer than
   * Node's 5000 so a reused connection is never closed under a slow test).
   */
  keepAliveTimeoutMs?: number;
}

export interface RawTcpServerOptions {
  /** Loopback address to listen on. Default '127.0.0.1'. */
  host?: LoopbackHost;
}

const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------
// Deterministic content for /bytes
// ---------------------------------------------------------------------------

/** Byte i of a /bytes?n=N body. */
export function patternByte(i: number): number {
  return i % 251;
}

/** The exact body /bytes?n=N sends. */
export function expectedBytes(n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = i % 251;
  return out;
}

/* 251 * 256 bytes: a whole number of periods, so consecutive slices line up. */
const PATTERN_BLOCK: Buffer = expectedBytes(251 * 256);

// ---------------------------------------------------------------------------
// Client-side helpers
// ---------------------------------------------------------------------------

/** What /echo answers with: the request as the server saw it. */
export interface EchoReply {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  body: string;
  bodyBase64: string;
}

export function echoOf(body: Buffer): EchoReply {
  return JSON.parse(body.toString('utf8')) as EchoReply;
}

/** A connected TCP net.Socket to a loopback port. */
export function connectTcp(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host });
    sock.once('error', reject);
    sock.once('connect', () => {
      sock.off('error', reject);
      resolve(sock);
    });
  });
}

// ---------------------------------------------------------------------------
// Connection tracking shared by every kind of server
// ---------------------------------------------------------------------------

interface ConnInfo {
  /** 1-based, counted since start or the last resetCounters(). */
  index: number;
  /** Requests seen so far on this connection. */
  requests: number;
}

function noop(): void {
  /* swallow errors from peers that go away mid-transfer */
}

function peerKey(sock: net.Socket): string | undefined {
  if (sock.remotePort === undefined) return undefined;
  return `${sock.remoteAddress ?? ''}|${sock.remotePort}`;
}

class Tracker {
  connections = 0;
  requests = 0;
  readonly remotePorts: number[] = [];
  readonly requestLog: RequestLogEntry[] = [];
  lastRequest: RecordedRequest | undefined;

  private readonly open = new Set<net.Socket>();
  private readonly infoBySocket = new WeakMap<net.Socket, ConnInfo>();
  /* TLS sockets are distinct objects from the accepted TCP sockets; map them by peer address. */
  private readonly infoByPeer = new Map<string, ConnInfo>();

  /** Call for every accepted raw (TCP or Unix) socket. */
  accept(sock: net.Socket): void {
    this.connections += 1;
    this.remotePorts.push(sock.remotePort ?? 0);
    const info: ConnInfo = { index: this.connections, requests: 0 };
    this.infoBySocket.set(sock, info);
    const key = peerKey(sock);
    if (key !== undefined) this.infoByPeer.set(key, info);
    this.open.add(sock);
    sock.on('error', noop);
    sock.once('close', () => {
      this.open.delete(sock);
      if (key !== undefined && this.infoByPeer.get(key) === info) this.infoByPeer.delete(key);
    });
  }

  info(sock: net.Socket): ConnInfo {
    let info = this.infoBySocket.get(sock);
    if (info === undefined) {
      const key = peerKey(sock);
      info = key !== undefined ? this.infoByPeer.get(key) : undefined;
      if (info === undefined) info = { index: 0, requests: 0 };
      this.infoBySocket.set(sock, info);
    }
    return info;
  }

  openCount(): number {
    return this.open.size;
  }

  /** Destroys every open socket; resolves once each has emitted 'close'. */
  destroyAll(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const sock of this.open) {
      waits.push(new Promise<void>((resolve) => sock.once('close', () => resolve())));
      sock.destroy();
    }
    return Promise.all(waits).then(() => undefined);
  }

  reset(): void {
    this.connections = 0;
    this.requests = 0;
    this.remotePorts.length = 0;
    this.requestLog.length = 0;
    this.lastRequest = undefined;
  }
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Listens on a loopback port (0: any) or a Unix socket path; rejects on the server's first error. */
export function listen(server: net.Server, target: { port: 0; host: string } | { path: string }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if ('path' in target) server.listen(target.path, done);
    else server.listen(target.port, target.host, done);
  });
}

/**
 * Builds the TestServer object. Counter fields are accessors over the
 * tracker, so a reference held by a test always shows current values.
 */
function makeTestServer(
  server: net.Server,
  tracker: Tracker,
  base: { url: string; port: number; host: string },
  afterClose?: () => Promise<void>,
): TestServer {
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    if (closing === undefined) {
      const serverClosed = new Promise<void>((resolve) => {
        server.close(() => resolve());
      });
      closing = Promise.all([serverClosed, tracker.destroyAll()]).then(async () => {
        if (afterClose !== undefined) await afterClose();
      });
    }
    return closing;
  };
  const ts: TestServer = {
    url: base.url,
    port: base.port,
    host: base.host,
    get connections(): number {
      return tracker.connections;
    },
    set connections(v: number) {
      tracker.connections = v;
    },
    get requests(): number {
      return tracker.requests;
    },
    set requests(v: number) {
      tracker.requests = v;
    },
    get remotePorts(): number[] {
      return tracker.remotePorts;
    },
    get requestLog(): RequestLogEntry[] {
      return tracker.requestLog;
    },
    get lastRequest(): RecordedRequest | undefined {
      return tracker.lastRequest;
    },
    set lastRequest(v: RecordedRequest | undefined) {
      tracker.lastRequest = v;
    },
    openConnections: () => tracker.openCount(),
    close,
    resetCounters: () => tracker.reset(),
  };
  return ts;
}

// ---------------------------------------------------------------------------
// Shared request handler
// ---------------------------------------------------------------------------

function intParam(u: URL, name: string, def: number, min: number, max: number): number {
  const raw = u.searchParams.get(name);
  if (raw === null || raw === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n)) return def;
  return Math.min(max, Math.max(min, Math.trunc(n)));
}

function sendText(res: http.ServerResponse, status: number, text: string, extra?: http.OutgoingHttpHeaders): void {
  const body = Buffer.from(text, 'utf8');
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': body.length,
    ...extra,
  });
  res.end(body);
}

function sendJson(res: http.ServerResponse, value: unknown): void {
  const body = Buffer.from(JSON.stringify(value), 'utf8');
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

function redirect(res: http.ServerResponse, location: string, status = 302): void {
  sendText(res, status, `redirect to ${location}\n`, { location });
}

function sendBytes(req: http.IncomingMessage, res: http.ServerResponse, n: number): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
  if (req.method === 'HEAD' || n === 0) {
    res.end();
    return;
  }
  let offset = 0;
  const pump = (): void => {
    while (offset < n) {
      if (res.destroyed) return;
      const start = offset % PATTERN_BLOCK.length;
      const len = Math.min(n - offset, PATTERN_BLOCK.length - start);
      offset += len;
      const ok = res.write(PATTERN_BLOCK.subarray(start, start + len));
      if (offset >= n) break;
      if (!ok) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

function route(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  body: Buffer,
  conn: ConnInfo,
  requestIndexOnConnection: number,
): void {
  const method = req.method ?? 'GET';
  const rawUrl = req.url ?? '/';
  const u = new URL(rawUrl, 'http://test.invalid');
  const p = u.pathname;
  let m: RegExpExecArray | null;

  if (p === '/hello') {
    sendText(res, 200, 'hello world\n');
    return;
  }

  if (p === '/echo') {
    sendJson(res, {
      method,
      url: rawUrl,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body: body.toString('utf8'),
      bodyBase64: body.toString('base64'),
    });
    return;
  }

  if ((m = /^\/status\/(\d{3})$/.exec(p)) !== null) {
    const code = Number(m[1]);
    if (code < 200 || code > 599) {
      sendText(res, 400, `bad status ${code}\n`);
      return;
    }
    sendText(res, code, `status ${code}`);
    return;
  }

  if ((m = /^\/redirect\/(\d+)$/.exec(p)) !== null) {
    const n = Number(m[1]);
    redirect(res, n <= 0 ? '/hello' : `/redirect/${n - 1}`);
    return;
  }

  if (p === '/redirect-to') {
    const target = u.searchParams.get('url');
    if (target === null || target === '') {
      sendText(res, 400, 'missing url\n');
      return;
    }
    const status = intParam(u, 'status', 302, 300, 399);
    redirect(res, target, status);
    return;
  }

  if (p === '/slow') {
    const ms = intParam(u, 'ms', 1000, 0, 600_000);
    const timer = setTimeout(() => {
      if (!res.destroyed) sendText(res, 200, 'slow');
    }, ms);
    res.once('close', () => clearTimeout(timer));
    return;
  }

  if (p === '/drip') {
    const chunks = intParam(u, 'chunks', 10, 0, 1_000_000);
    const interval = intParam(u, 'interval', 50, 0, 600_000);
    const chunk = Buffer.alloc(1024, 'x');
    res.writeHead(200, { 'content-type': 'application/octet-stream' }); // no length: chunked
    res.flushHeaders();
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const stop = (): void => {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    };
    const tick = (): void => {
      if (res.destroyed) {
        stop();
        return;
      }
      if (sent < chunks) {
        res.write(chunk);
        sent += 1;
      }
      if (sent >= chunks) {
        stop();
        res.end();
      }
    };
    res.once('close', stop);
    // First chunk right away, then one per interval.
    tick();
    if (!res.writableEnded) timer = setInterval(tick, interval);
    return;
  }

  if (p === '/bytes') {
    const n = intParam(u, 'n', 0, 0, Number.MAX_SAFE_INTEGER);
    sendBytes(req, res, n);
    return;
  }

  if (p === '/headers') {
    const body = Buffer.from('headers\n', 'utf8');
    res.statusCode = 200;
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.setHeader('content-length', body.length);
    res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
    res.setHeader('x-multi', ['a', 'b']);
    res.setHeader('x-case', 'Value');
    res.end(body);
    return;
  }

  if (p === '/connection-info') {
    sendJson(res, {
      remotePort: req.socket.remotePort ?? null,
      remoteAddress: req.socket.remoteAddress ?? null,
      connectionIndex: conn.index,
      requestIndexOnConnection,
    });
    return;
  }

  if (p === '/close') {
    sendText(res, 200, 'closing\n', { connection: 'close' });
    return;
  }

  sendText(res, 404, `not found: ${p}\n`);
}

function makeRequestHandler(tracker: Tracker): http.RequestListener {
  return (req, res) => {
    req.on('error', noop);
    res.on('error', noop);
    tracker.requests += 1;
    const conn = tracker.info(req.socket);
    conn.requests += 1;
    const requestIndexOnConnection = conn.requests;
    tracker.requestLog.push({
      method: req.method ?? '',
      url: req.url ?? '',
      connectionIndex: conn.index,
    });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      tracker.lastRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
      };
      try {
        route(req, res, body, conn, requestIndexOnConnection);
      } catch (err) {
        if (!res.headersSent) sendText(res, 500, `handler error: ${String(err)}\n`);
        else res.destroy();
      }
    });
  };
}

function configureHttp(server: http.Server | https.Server, keepAliveTimeoutMs: number): void {
  server.keepAliveTimeout = keepAliveTimeoutMs;
  // Keep headersTimeout above keepAliveTimeout, as Node recommends.
  server.headersTimeout = Math.max(60_000, keepAliveTimeoutMs + 1_000);
  server.requestTimeout = 0;
  server.maxRequestsPerSocket = 0;
}

// ---------------------------------------------------------------------------
// Server factories
// ---------------------------------------------------------------------------

/** Plain HTTP/1.1 server with the shared routes on a loopback TCP port. */
export async function startHttpServer(opts: HttpServerOptions = {}): Promise<TestServer> {
  const host = opts.host ?? '127.0.0.1';
  const tracker = new Tracker();
  const server = http.createServer(makeRequestHandler(tracker));
  configureHttp(server, opts.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS);
  server.on('connection', (sock: net.Socket) => tracker.accept(sock));
  await listen(server, { port: 0, host });
  const port = (server.address() as net.AddressInfo).port;
  return makeTestServer(server, tracker, { url: `http://${hostForUrl(host)}:${port}`, port, host });
}

/** HTTPS (HTTP/1.1 over TLS) server with the shared routes; trust it with TEST_CA_FILE. */
export async function startHttpsServer(opts: HttpServerOptions = {}): Promise<TestServer> {
  const host = opts.host ?? '127.0.0.1';
  const tracker = new Tracker();
  const server = https.createServer(
    {
      key: fs.readFileSync(TEST_KEY_FILE),
      cert: fs.readFileSync(TEST_CERT_FILE),
      ALPNProtocols: ['http/1.1'],
    },
    makeRequestHandler(tracker),
  );
  configureHttp(server, opts.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS);
  // 'connection' carries the accepted TCP socket, before the TLS handshake.
  server.on('connection', (sock: net.Socket) => tracker.accept(sock));
  server.on('tlsClientError', noop);
  await listen(server, { port: 0, host });
  const port = (server.address() as net.AddressInfo).port;
  return makeTestServer(server, tracker, { url: `https://${hostForUrl(host)}:${port}`, port, host });
}

/**
 * Plain HTTP server with the shared routes on a Unix socket in a fresh temp
 * dir. url is 'http://localhost'; connect through `path` (CURLOPT_UNIX_SOCKET_PATH).
 */
export async function startUnixServer(opts: Pick<HttpServerOptions, 'keepAliveTimeoutMs'> = {}): Promise<UnixTestServer> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'curl-sockets-test-'));
  const sockPath = path.join(dir, 'http.sock');
  const tracker = new Tracker();
  const server = http.createServer(makeRequestHandler(tracker));
  configureHttp(server, opts.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS);
  server.on('connection', (sock: net.Socket) => tracker.accept(sock));
  try {
    await listen(server, { path: sockPath });
  } catch (err) {
    await fs.promises.rm(dir, { recursive: true, force: true });
    throw err;
  }
  const ts = makeTestServer(server, tracker, { url: 'http://localhost', port: 0, host: 'localhost' }, async () => {
    await fs.promises.rm(dir, { recursive: true, force: true });
  });
  return Object.assign(ts, { path: sockPath });
}

/**
 * Plain TCP server for canned responses: `onConnection` gets every accepted
 * socket (an 'error' listener is already attached). Counts connections like
 * the HTTP servers; `requests` stays 0 and `lastRequest` undefined.
 */
export async function startRawTcpServer(
  onConnection: (sock: net.Socket) => void,
  opts: RawTcpServerOptions = {},
): Promise<TestServer> {
  const host = opts.host ?? '127.0.0.1';
  const tracker = new Tracker();
  const server = net.createServer((sock) => {
    tracker.accept(sock);
    onConnection(sock);
  });
  await listen(server, { port: 0, host });
  const port = (server.address() as net.AddressInfo).port;
  return makeTestServer(server, tracker, { url: `http://${hostForUrl(host)}:${port}`, port, host });
}

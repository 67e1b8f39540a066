/**
 * IpPolicy end to end: the verdict is taken where libcurl is about to connect
 * (opensocket) or about to reuse a pooled connection (prereq + getpeername),
 * so every path to an address ends at the same check: odd IP spellings,
 * redirects, names with several addresses, RESOLVE / CONNECT_TO, proxies from
 * the environment, Unix sockets, other protocols, DoH and the connection pool.
 *
 * Network: loopback only. Every test that names a non-loopback address expects
 * the refusal before connect(2), and additionally installs a SOCKOPTFUNCTION
 * guard: libcurl calls it after the socket is created and before connect, so
 * if the policy ever let such a socket through, the guard fails it (and the
 * test) before a packet is sent. The DoH test runs in a child process inside a
 * fresh network namespace (`unshare -rn`) and is skipped where that is not
 * possible.
 *
 * Every denied case asserts that the server behind the address saw no
 * connection (and no request).
 */
import { spawnSync } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  BlockedAddressError,
  CURL_SOCKOPT_ERROR,
  CURL_SOCKOPT_OK,
  CURL_HTTP_VERSION_2_0,
  CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE,
  CurlError,
  Easy,
  IpPolicy,
  Multi,
  SOL_SOCKET,
  libcurlVersion,
  setSocketOption,
  type Transfer,
} from '../dist/index.js';
import {
  TEST_CA_FILE,
  startHttpServer,
  startHttpsServer,
  startRawTcpServer,
  startUnixServer,
  type TestServer,
  type UnixTestServer,
} from './helpers/servers';
import { startDohServer, type DohServer } from './helpers/doh-server';
import { closedPort, rejection, waitFor } from './helpers/wait';

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/** Runs `p` and returns what it rejected with; fails the test if it resolved. */
interface BlockExpectation {
  code?: string;
  address?: string;
  port?: number;
  family?: number;
  reason?: string | RegExp;
}

/** Asserts a CurlError whose cause is the BlockedAddressError described; returns the cause. */
function expectBlocked(err: unknown, want: BlockExpectation = {}): BlockedAddressError {
  expect(err).toBeInstanceOf(CurlError);
  const curlError = err as CurlError;
  expect(curlError.code).toBe(want.code ?? 'CURLE_COULDNT_CONNECT');
  expect(curlError.cause).toBeInstanceOf(BlockedAddressError);
  const cause = curlError.cause as BlockedAddressError;
  expect(cause.code).toBe('ERR_BLOCKED_ADDRESS');
  expect(cause.name).toBe('BlockedAddressError');
  if (want.address !== undefined) expect(cause.address).toBe(want.address);
  if (want.port !== undefined) expect(cause.port).toBe(want.port);
  if (want.family !== undefined) expect(cause.family).toBe(want.family);
  if (typeof want.reason === 'string') expect(cause.reason).toBe(want.reason);
  else if (want.reason instanceof RegExp) expect(cause.reason).toMatch(want.reason);
  return cause;
}

/** A refusal by libcurl itself (not a block): CurlError with that code and no BlockedAddressError cause. */
function expectCurlCode(err: unknown, code: string): CurlError {
  expect(err).toBeInstanceOf(CurlError);
  const curlError = err as CurlError;
  expect(curlError.code).toBe(code);
  expect(curlError.cause).not.toBeInstanceOf(BlockedAddressError);
  return curlError;
}

/**
 * Fails every socket libcurl opens, after opensocket and before connect(2).
 * Used wherever a test names a non-loopback address: the policy must refuse
 * it in opensocket, so the guard must never be called.
 */
function guardConnect(easy: Easy): { calls: number } {
  const guard = { calls: 0 };
  easy.setopt('SOCKOPTFUNCTION', () => {
    guard.calls += 1;
    return CURL_SOCKOPT_ERROR;
  });
  return guard;
}

/**
 * Runs one transfer on a Multi of its own, closed afterwards: its pool holds no
 * connection from another test, so a block happens at connect (opensocket) and
 * not on reuse (prereq). The reuse tests use shared Multis on purpose.
 */
async function performOnce(easy: Easy): Promise<Transfer> {
  const multi = new Multi();
  try {
    return await multi.perform(easy);
  } finally {
    multi.close();
  }
}

/** Collects what the write callback is given (to prove no body byte arrived). */
function collectBody(easy: Easy): Buffer[] {
  const chunks: Buffer[] = [];
  easy.setopt('WRITEFUNCTION', (chunk: Buffer) => {
    chunks.push(Buffer.from(chunk));
    return chunk.length;
  });
  return chunks;
}

/** A minimal HTTP server on any loopback address (the shared helpers only take 127.0.0.1 and ::1). */
interface CountingServer {
  host: string;
  port: number;
  connections: number;
  requests: string[];
  /** Connections currently open. */
  openConnections(): number;
  close(): Promise<void>;
}

async function startCountingServer(host: string, port = 0, ipv6Only = false): Promise<CountingServer> {
  const state = { connections: 0, requests: [] as string[] };
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    state.requests.push(req.url ?? '');
    const body = `hello from ${host}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (sock: net.Socket) => {
    state.connections += 1;
    sockets.add(sock);
    sock.on('error', () => undefined);
    sock.once('close', () => sockets.delete(sock));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ipv6Only }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = (server.address() as net.AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    host,
    port: actualPort,
    get connections() {
      return state.connections;
    },
    get requests() {
      return state.requests;
    },
    openConnections: () => sockets.size,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const sock of sockets) sock.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}

/** Connects a net.Socket to a loopback server (for useConnectedSocket). */
function connectTo(port: number, host: string): Promise<net.Socket> {
  return new Promise<net.Socket>((resolve, reject) => {
    const sock = net.connect(port, host, () => {
      sock.off('error', reject);
      resolve(sock);
    });
    sock.once('error', reject);
  });
}

/** Every policy-related lock and a value of the right type for it. */
const LOCKED_OPTIONS: ReadonlyArray<readonly [string, unknown]> = [
  ['PROXY', 'http://127.0.0.1:9'],
  ['PRE_PROXY', 'socks5://127.0.0.1:9'],
  ['UNIX_SOCKET_PATH', '/tmp/curl-sockets-policy-test.sock'],
  ['ABSTRACT_UNIX_SOCKET', 'curl-sockets-policy-test'],
  ['DOH_URL', 'https://127.0.0.1:9/dns-query'],
  ['OPENSOCKETFUNCTION', () => -1],
  ['PREREQFUNCTION', () => 0],
  ['PROTOCOLS', 0x7fffffff],
  ['REDIR_PROTOCOLS', 0x7fffffff],
  ['PROTOCOLS_STR', 'all'],
  ['REDIR_PROTOCOLS_STR', 'all'],
];

/** setopt by a runtime name (the typed overload wants a literal name). */
function setoptByName(easy: Easy, name: string, value: unknown): Easy {
  return (easy.setopt as (name: string, value: unknown) => Easy)(name, value);
}

function expectAllLocked(easy: Easy): void {
  for (const [name, value] of LOCKED_OPTIONS) {
    expect(() => setoptByName(easy, name, value), name).toThrow(TypeError);
    expect(() => setoptByName(easy, name, null), `${name} = null`).toThrow(TypeError);
  }
  expect(() => easy.useConnectedSocket(2_000_000)).toThrow(TypeError);
}

// ---------------------------------------------------------------------------
// Shared servers
// ---------------------------------------------------------------------------

let web: TestServer; // 127.0.0.1:P
let web6: TestServer; // [::1]:P6
let shadow6: CountingServer; // [::1]:P, catches spellings of :: that reach ::1 on web's port

beforeAll(async () => {
  web = await startHttpServer({ host: '127.0.0.1' });
  web6 = await startHttpServer({ host: '::1' });
  shadow6 = await startCountingServer('::1', web.port, true);
});

afterAll(async () => {
  await Promise.all([web.close(), web6.close(), shadow6.close()]);
});

/** libcurl 7.88.0-7.88.1 cannot use pre-connected sockets (useConnectedSocket throws there). */
const HANDED_SOCKETS = !libcurlVersion.startsWith('7.88.');

// ---------------------------------------------------------------------------
// Default policy, allow, deny, check()
// ---------------------------------------------------------------------------

describe('default policy, allow and deny', () => {
  it('blocks 127.0.0.1 before connect: CURLE_COULDNT_CONNECT caused by a BlockedAddressError (loopback)', async () => {
    const before = web.connections;
    const easy = new IpPolicy().apply(new Easy()).setopt('URL', `${web.url}/hello`);
    const chunks = collectBody(easy);
    const err = await rejection(performOnce(easy));
    const cause = expectBlocked(err, { address: '127.0.0.1', port: web.port, family: AF_INET, reason: 'loopback' });
    expect(cause).toBeInstanceOf(Error);
    expect(cause.message).toContain('127.0.0.1');
    expect(chunks).toEqual([]);
    expect(web.connections).toBe(before);
    easy.close();
  });

  it('blocks ::1 the same way (AF_INET6, loopback)', async () => {
    const before = web6.connections;
    const easy = new IpPolicy().apply(new Easy()).setopt('URL', `${web6.url}/hello`);
    const err = await rejection(performOnce(easy));
    expectBlocked(err, { address: '::1', port: web6.port, family: AF_INET6, reason: 'loopback' });
    expect(web6.connections).toBe(before);
    easy.close();
  });

  it('blocks localhost (both of its addresses)', async () => {
    const before = web.connections + shadow6.connections;
    const easy = new IpPolicy().apply(new Easy()).setopt('URL', `http://localhost:${web.port}/hello`);
    const cause = expectBlocked(await rejection(performOnce(easy)), { port: web.port, reason: 'loopback' });
    expect(['127.0.0.1', '::1']).toContain(cause.address);
    expect(web.connections + shadow6.connections).toBe(before);
    easy.close();
  });

  it("allow ['127.0.0.0/8'] lets the same URL through", async () => {
    const before = web.connections;
    const easy = new IpPolicy({ allow: ['127.0.0.0/8'] }).apply(new Easy()).setopt('URL', `${web.url}/hello`);
    const t = await performOnce(easy);
    expect(t.status).toBe(200);
    expect(t.body.toString()).toBe('hello world\n');
    expect(t.info.primaryIp).toBe('127.0.0.1');
    expect(web.connections).toBe(before + 1);
    easy.close();
  });

  it("allow ['::1'] lets [::1] through and still blocks 127.0.0.1", async () => {
    const policy = new IpPolicy({ allow: ['::1'] });
    const ok = policy.apply(new Easy()).setopt('URL', `${web6.url}/hello`);
    expect((await performOnce(ok)).status).toBe(200);
    ok.close();
    const before = web.connections;
    const denied = policy.apply(new Easy()).setopt('URL', `${web.url}/hello`);
    expectBlocked(await rejection(performOnce(denied)), { address: '127.0.0.1', reason: 'loopback' });
    expect(web.connections).toBe(before);
    denied.close();
  });

  it('deny beats allow, and the reason names the deny entry', async () => {
    const policy = new IpPolicy({ allow: ['127.0.0.0/8'], deny: ['127.0.0.1'] });
    const before = web.connections;
    const easy = policy.apply(new Easy()).setopt('URL', `${web.url}/hello`);
    const cause = expectBlocked(await rejection(performOnce(easy)), {
      address: '127.0.0.1',
      port: web.port,
      family: AF_INET,
      reason: 'denied by 127.0.0.1/32',
    });
    expect(cause.reason).toBe(policy.check('127.0.0.1').reason);
    expect(web.connections).toBe(before);
    easy.close();
  });

  it('the reason of a block is exactly what check() says for the address', async () => {
    const policies = [
      new IpPolicy(),
      new IpPolicy({ deny: ['127.0.0.0/8'] }),
      new IpPolicy({ allow: ['127.0.0.0/8'], deny: ['127.0.0.1/32'] }),
      new IpPolicy({ allow: ['::/0'], deny: ['::1/128'] }),
    ];
    for (const policy of policies) {
      for (const server of [web, web6]) {
        const before = server.connections;
        const easy = policy.apply(new Easy()).setopt('URL', `${server.url}/hello`);
        const cause = expectBlocked(await rejection(performOnce(easy)), { address: server.host });
        expect(cause.reason).toBe(policy.check(server.host).reason);
        expect(policy.check(server.host).allowed).toBe(false);
        expect(server.connections).toBe(before);
        easy.close();
      }
    }
  });

  it('check() is pure: it only judges text, is stable, and never resolves names', () => {
    const policy = new IpPolicy({ allow: ['127.0.0.0/8'], deny: ['127.0.0.1'] });
    const before = web.connections;
    expect(new IpPolicy().check('127.0.0.1')).toEqual({ allowed: false, reason: 'loopback' });
    expect(new IpPolicy().check('::1')).toEqual({ allowed: false, reason: 'loopback' });
    expect(new IpPolicy().check('::ffff:127.0.0.1')).toEqual({ allowed: false, reason: 'loopback' });
    expect(new IpPolicy().check('8.8.8.8')).toEqual({ allowed: true, reason: 'public' });
    expect(policy.check('127.0.0.2')).toEqual({ allowed: true, reason: 'allowed by 127.0.0.0/8' });
    expect(policy.check('127.0.0.1')).toEqual({ allowed: false, reason: 'denied by 127.0.0.1/32' });
    expect(policy.check('127.0.0.1')).toEqual(policy.check('127.0.0.1'));
    // Names and the spellings libcurl accepts in URLs are not addresses for check().
    for (const text of ['localhost', '127.1', '2130706433', '0x7f000001', '0177.0.0.1', '127.0.0.1/32', '', ' 127.0.0.1']) {
      expect(() => policy.check(text), JSON.stringify(text)).toThrow(TypeError);
    }
    expect(() => policy.check(2130706433 as unknown as string)).toThrow(TypeError);
    expect(web.connections).toBe(before);
  });

  it('malformed entries and options throw TypeError', () => {
    for (const entry of ['127.0.0.1/33', '::1/129', 'not-an-ip', '127.1', '2130706433', '', '1.2.3.4/', 'localhost']) {
      expect(() => new IpPolicy({ allow: [entry] }), `allow ${entry}`).toThrow(TypeError);
      expect(() => new IpPolicy({ deny: [entry] }), `deny ${entry}`).toThrow(TypeError);
    }
    expect(() => new IpPolicy({ deny: [42 as unknown as string] })).toThrow(TypeError);
    // A bare string is not a list of entries.
    expect(() => new IpPolicy({ allow: '127.0.0.1' as unknown as string[] })).toThrow(TypeError);
    expect(() => new IpPolicy(null as unknown as object)).toThrow(TypeError);
    // Any iterable of strings is fine.
    expect(new IpPolicy({ allow: new Set(['127.0.0.0/8']) }).check('127.0.0.5').allowed).toBe(true);
  });
});

// ---------------------------------------------------------------------------
// Address spellings: judged by what libcurl connects to
// ---------------------------------------------------------------------------

describe('every spelling of an address is judged by what libcurl connects to', () => {
  const spellings: Array<{ host: string; address: string; family: 'v4' | 'v6'; reason: string }> = [
    { host: '2130706433', address: '127.0.0.1', family: 'v4', reason: 'loopback' },
    { host: '0x7f000001', address: '127.0.0.1', family: 'v4', reason: 'loopback' },
    { host: '0177.0.0.1', address: '127.0.0.1', family: 'v4', reason: 'loopback' },
    { host: '127.1', address: '127.0.0.1', family: 'v4', reason: 'loopback' },
    { host: '0x7f.0.0.1', address: '127.0.0.1', family: 'v4', reason: 'loopback' },
    { host: '[::ffff:7f00:1]', address: '::ffff:127.0.0.1', family: 'v6', reason: 'loopback' },
    { host: '[::ffff:127.0.0.1]', address: '::ffff:127.0.0.1', family: 'v6', reason: 'loopback' },
    { host: '[0:0:0:0:0:0:0:1]', address: '::1', family: 'v6', reason: 'loopback' },
    { host: '0', address: '0.0.0.0', family: 'v4', reason: 'this-network' },
    { host: '0.0.0.0', address: '0.0.0.0', family: 'v4', reason: 'this-network' },
    { host: '[::]', address: '::', family: 'v6', reason: 'unspecified' },
  ];

  for (const s of spellings) {
    it(`http://${s.host}:P is blocked as ${s.address} (${s.reason}) with no connection`, async () => {
      const before = web.connections + shadow6.connections;
      const policy = new IpPolicy();
      const easy = policy.apply(new Easy()).setopt('URL', `http://${s.host}:${web.port}/hello`);
      const cause = expectBlocked(await rejection(performOnce(easy)), {
        address: s.address,
        port: web.port,
        family: s.family === 'v4' ? AF_INET : AF_INET6,
        reason: s.reason,
      });
      expect(policy.check(cause.address)).toEqual({ allowed: false, reason: s.reason });
      expect(web.connections + shadow6.connections).toBe(before);
      easy.close();
    });
  }

  it('the same spellings really reach the loopback server when allowed (so the blocks above are meaningful)', async () => {
    const policy = new IpPolicy({ allow: ['127.0.0.0/8', '0.0.0.0/8', '::1', '::'] });
    for (const s of spellings) {
      const before = web.connections + shadow6.connections;
      const easy = policy.apply(new Easy()).setopt('URL', `http://${s.host}:${web.port}/hello`);
      const t = await performOnce(easy);
      expect(t.status, s.host).toBe(200);
      expect(web.connections + shadow6.connections, s.host).toBe(before + 1);
      easy.close();
    }
  });

  // 0.0.0.0 and :: are not addresses anyone listens on: connect(2) to them reaches the local host.
  // Allowing them must not open a path to loopback (which this policy denies): no packet may reach it.
  for (const s of [
    { host: '0', allow: '0.0.0.0/8', peer: '127.0.0.1', family: 'v4' },
    { host: '[::]', allow: '::/128', peer: '::1', family: 'v6' },
  ] as const) {
    it(`allow ['${s.allow}'] does not let http://${s.host}:P reach ${s.peer}`, async () => {
      const before = web.connections + shadow6.connections;
      const requests = web.requests + shadow6.requests.length;
      const policy = new IpPolicy({ allow: [s.allow] });
      expect(policy.check(s.peer)).toEqual({ allowed: false, reason: 'loopback' });
      const easy = policy.apply(new Easy()).setopt('URL', `http://${s.host}:${web.port}/hello`);
      const chunks = collectBody(easy);
      const err = await rejection(performOnce(easy));
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).cause).toBeInstanceOf(BlockedAddressError);
      expect(chunks).toEqual([]);
      expect(web.requests + shadow6.requests.length).toBe(requests);
      expect(web.connections + shadow6.connections).toBe(before);
      easy.close();
    });
  }

  it('IPv4-mapped [::ffff:127.0.0.1] is judged as 127.0.0.1 by explicit entries too', async () => {
    const mapped = `http://[::ffff:7f00:1]:${web.port}/hello`;
    const plain = `${web.url}/hello`;

    // An IPv4 deny entry catches the mapped spelling, even against an allow of all mapped space.
    let before = web.connections;
    let policy = new IpPolicy({ allow: ['::ffff:0:0/96'], deny: ['127.0.0.0/8'] });
    let easy = policy.apply(new Easy()).setopt('URL', mapped);
    expectBlocked(await rejection(performOnce(easy)), {
      address: '::ffff:127.0.0.1',
      family: AF_INET6,
      reason: 'denied by 127.0.0.0/8',
    });
    expect(web.connections).toBe(before);
    easy.close();

    // A mapped deny entry catches the IPv4 spelling.
    before = web.connections;
    policy = new IpPolicy({ allow: ['127.0.0.0/8'], deny: ['::ffff:127.0.0.1/128'] });
    easy = policy.apply(new Easy()).setopt('URL', plain);
    expectBlocked(await rejection(performOnce(easy)), {
      address: '127.0.0.1',
      family: AF_INET,
      reason: policy.check('127.0.0.1').reason,
    });
    expect(policy.check('127.0.0.1').reason).toMatch(/^denied by /);
    expect(web.connections).toBe(before);
    easy.close();

    // An IPv6 allow of everything does not cover mapped loopback (it is IPv4 for every rule).
    before = web.connections;
    policy = new IpPolicy({ allow: ['::/0'] });
    easy = policy.apply(new Easy()).setopt('URL', mapped);
    expectBlocked(await rejection(performOnce(easy)), { address: '::ffff:127.0.0.1', reason: 'loopback' });
    expect(web.connections).toBe(before);
    easy.close();

    // Allowed: an IPv4 allow entry lets the mapped spelling through, and a mapped entry the IPv4 one.
    before = web.connections;
    easy = new IpPolicy({ allow: ['127.0.0.0/8'] }).apply(new Easy()).setopt('URL', mapped);
    expect((await performOnce(easy)).status).toBe(200);
    easy.close();
    easy = new IpPolicy({ allow: ['::ffff:127.0.0.1'] }).apply(new Easy()).setopt('URL', plain);
    expect((await performOnce(easy)).status).toBe(200);
    easy.close();
    expect(web.connections).toBe(before + 2);
  });

  const offLoopback: Array<{ host: string; address: string; reason: string }> = [
    // NAT64 of 127.0.0.1: judged as the embedded IPv4 address.
    { host: '[64:ff9b::7f00:1]', address: '64:ff9b::7f00:1', reason: 'loopback' },
    { host: '[64:ff9b::a00:1]', address: '64:ff9b::a00:1', reason: 'private' },
    { host: '[::127.0.0.1]', address: '::127.0.0.1', reason: 'ipv4-compatible' },
    { host: '[fe80::1%25lo]', address: 'fe80::1', reason: 'link-local' },
    { host: '[fd00::1]', address: 'fd00::1', reason: 'unique-local' },
    { host: '[2001:db8::1]', address: '2001:db8::1', reason: 'documentation' },
  ];
  for (const s of offLoopback) {
    it(`http://${s.host}:P (not loopback) is refused in opensocket (${s.reason})`, async () => {
      const easy = new IpPolicy().apply(new Easy()).setopt('URL', `http://${s.host}:${web.port}/hello`);
      const guard = guardConnect(easy);
      expectBlocked(await rejection(performOnce(easy)), { address: s.address, family: AF_INET6, reason: s.reason });
      expect(guard.calls).toBe(0);
      easy.close();
    });
  }
});

// ---------------------------------------------------------------------------
// Redirects
// ---------------------------------------------------------------------------

describe('redirects', () => {
  let b: CountingServer; // 127.0.0.2

  beforeAll(async () => {
    b = await startCountingServer('127.0.0.2');
  });
  afterAll(async () => {
    await b.close();
  });

  function redirectUrl(target: string): string {
    return `${web.url}/redirect-to?url=${encodeURIComponent(target)}`;
  }

  it('a redirect to a denied address is blocked at connect; the target saw no connection', async () => {
    const beforeA = web.requests;
    const beforeB = b.connections;
    const easy = new IpPolicy({ allow: ['127.0.0.1/32'] })
      .apply(new Easy())
      .setopt('URL', redirectUrl(`http://127.0.0.2:${b.port}/hello`))
      .setopt('FOLLOWLOCATION', true);
    const chunks = collectBody(easy);
    expectBlocked(await rejection(performOnce(easy)), {
      address: '127.0.0.2',
      port: b.port,
      family: AF_INET,
      reason: 'loopback',
    });
    expect(web.requests).toBe(beforeA + 1); // the allowed first hop happened
    expect(b.connections).toBe(beforeB);
    expect(b.requests).toEqual([]);
    expect(Buffer.concat(chunks).toString()).not.toContain('hello from');
    easy.close();
  });

  it('a redirect to a denied spelling (http://2130706434) is blocked as 127.0.0.2', async () => {
    const beforeB = b.connections;
    const easy = new IpPolicy({ allow: ['127.0.0.1/32'] })
      .apply(new Easy())
      .setopt('URL', redirectUrl(`http://2130706434:${b.port}/hello`))
      .setopt('FOLLOWLOCATION', true);
    expectBlocked(await rejection(performOnce(easy)), { address: '127.0.0.2', port: b.port, reason: 'loopback' });
    expect(b.connections).toBe(beforeB);
    easy.close();
  });

  it('control: with 127.0.0.0/8 allowed the same redirect reaches 127.0.0.2', async () => {
    const beforeB = b.connections;
    const easy = new IpPolicy({ allow: ['127.0.0.0/8'] })
      .apply(new Easy())
      .setopt('URL', redirectUrl(`http://127.0.0.2:${b.port}/hello`))
      .setopt('FOLLOWLOCATION', true);
    const t = await performOnce(easy);
    expect(t.status).toBe(200);
    expect(t.body.toString()).toBe('hello from 127.0.0.2\n');
    expect(t.info.primaryIp).toBe('127.0.0.2');
    expect(b.connections).toBe(beforeB + 1);
    easy.close();
  });
});

// ---------------------------------------------------------------------------
// Names with several addresses
// ---------------------------------------------------------------------------

describe('a name resolving to several addresses', () => {
  let two: CountingServer; // 127.0.0.2 on web's port

  beforeAll(async () => {
    two = await startCountingServer('127.0.0.2', web.port);
  });
  afterAll(async () => {
    await two.close();
  });

  it('skips the denied address and connects to the allowed one', async () => {
    const before1 = web.connections;
    const before2 = two.connections;
    const easy = new IpPolicy({ allow: ['127.0.0.1/32'] })
      .apply(new Easy())
      .setopt('URL', `http://multi.test:${web.port}/hello`)
      .setopt('RESOLVE', [`multi.test:${web.port}:127.0.0.2,127.0.0.1`]);
    const t = await performOnce(easy);
    expect(t.status).toBe(200);
    expect(t.body.toString()).toBe('hello world\n');
    expect(t.info.primaryIp).toBe('127.0.0.1');
    expect(web.connections).toBe(before1 + 1);
    expect(two.connections).toBe(before2);
    easy.close();
  });

  it('a deny entry in the middle of an allowed range is skipped the same way', async () => {
    const before1 = web.connections;
    const before2 = two.connections;
    const easy = new IpPolicy({ allow: ['127.0.0.0/8'], deny: ['127.0.0.1'] })
      .apply(new Easy())
      .setopt('URL', `http://multi.test:${web.port}/hello`)
      .setopt('RESOLVE', [`multi.test:${web.port}:127.0.0.1,127.0.0.2`]);
    const t = await performOnce(easy);
    expect(t.body.toString()).toBe('hello from 127.0.0.2\n');
    expect(t.info.primaryIp).toBe('127.0.0.2');
    expect(web.connections).toBe(before1);
    expect(two.connections).toBe(before2 + 1);
    easy.close();
  });

  it('when every address is denied the transfer is blocked and neither server saw a connection', async () => {
    const before1 = web.connections;
    const before2 = two.connections;
    const easy = new IpPolicy()
      .apply(new Easy())
      .setopt('URL', `http://multi.test:${web.port}/hello`)
      .setopt('RESOLVE', [`multi.test:${web.port}:127.0.0.2,127.0.0.1`]);
    const cause = expectBlocked(await rejection(performOnce(easy)), { port: web.port, reason: 'loopback' });
    expect(['127.0.0.1', '127.0.0.2']).toContain(cause.address);
    expect(web.connections).toBe(before1);
    expect(two.connections).toBe(before2);
    easy.close();
  });
});

// ---------------------------------------------------------------------------
// RESOLVE and CONNECT_TO
// ---------------------------------------------------------------------------

describe('RESOLVE and CONNECT_TO: the real target is judged', () => {
  it('CONNECT_TO a loopback address is blocked at that address; allowed, it works', async () => {
    let before = web.connections;
    const denied = new IpPolicy()
      .apply(new Easy())
      .setopt('URL', 'http://example.test/hello')
      .setopt('CONNECT_TO', [`example.test:80:127.0.0.1:${web.port}`]);
    expectBlocked(await rejection(performOnce(denied)), { address: '127.0.0.1', port: web.port, reason: 'loopback' });
    expect(web.connections).toBe(before);
    denied.close();

    before = web.connections;
    const allowed = new IpPolicy({ allow: ['127.0.0.1/32'] })
      .apply(new Easy())
      .setopt('URL', 'http://example.test/hello')
      .setopt('CONNECT_TO', [`example.test:80:127.0.0.1:${web.port}`]);
    const t = await performOnce(allowed);
    expect(t.status).toBe(200);
    expect(t.info.primaryIp).toBe('127.0.0.1');
    expect(web.lastRequest?.headers.host).toBe('example.test');
    expect(web.connections).toBe(before + 1);
    allowed.close();
  });

  it('RESOLVE to a loopback address is blocked at that address; allowed, it works', async () => {
    let before = web.connections;
    const denied = new IpPolicy()
      .apply(new Easy())
      .setopt('URL', `http://example.test:${web.port}/hello`)
      .setopt('RESOLVE', [`example.test:${web.port}:127.0.0.1`]);
    expectBlocked(await rejection(performOnce(denied)), { address: '127.0.0.1', port: web.port, reason: 'loopback' });
    expect(web.connections).toBe(before);
    denied.close();

    before = web.connections;
    const allowed = new IpPolicy({ allow: ['127.0.0.1/32'] })
      .apply(new Easy())
      .setopt('URL', `http://example.test:${web.port}/hello`)
      .setopt('RESOLVE', [`example.test:${web.port}:127.0.0.1`]);
    const t = await performOnce(allowed);
    expect(t.status).toBe(200);
    expect(web.lastRequest?.headers.host).toBe(`example.test:${web.port}`);
    expect(web.connections).toBe(before + 1);
    allowed.close();
  });

  it('a name that RESOLVEs to a public address but is CONNECT_TO loopback is judged at loopback', async () => {
    const before = web.connections;
    const easy = new IpPolicy()
      .apply(new Easy())
      .setopt('URL', `http://public.test:${web.port}/hello`)
      .setopt('RESOLVE', [`public.test:${web.port}:8.8.8.8`])
      .setopt('CONNECT_TO', [`public.test:${web.port}:127.0.0.1:${web.port}`]);
    const guard = guardConnect(easy);
    expectBlocked(await rejection(performOnce(easy)), { address: '127.0.0.1', port: web.port, reason: 'loopback' });
    expect(guard.calls).toBe(0);
    expect(web.connections).toBe(before);
    easy.close();
  });

  it('a name RESOLVEd to a denied public address is refused before connect (denied by ...)', async () => {
    const policy = new IpPolicy({ deny: ['93.184.216.0/24'] });
    expect(policy.check('93.184.216.34')).toEqual({ allowed: false, reason: 'denied by 93.184.216.0/24' });
    const easy = policy
      .apply(new Easy())
      .setopt('URL', `http://rebind.test:${web.port}/hello`)
      .setopt('RESOLVE', [`rebind.test:${web.port}:93.184.216.34`]);
    const guard = guardConnect(easy);
    const cause = expectBlocked(await rejection(performOnce(easy)), {
      address: '93.184.216.34',
      port: web.port,
      family: AF_INET,
    });
    expect(cause.reason.startsWith('denied by')).toBe(true);
    expect(cause.reason).toBe('denied by 93.184.216.0/24');
    expect(guard.calls).toBe(0);
    easy.close();
  });

  it('RESOLVE and CONNECT_TO stay settable after apply()', () => {
    const easy = new IpPolicy().apply(new Easy());
    expect(() => easy.setopt('RESOLVE', ['a.test:80:127.0.0.1'])).not.toThrow();
    expect(() => easy.setopt('CONNECT_TO', ['a.test:80:127.0.0.1:81'])).not.toThrow();
    expect(() => easy.setopt('RESOLVE', null)).not.toThrow();
    expect(() => easy.setopt('CONNECT_TO', null)).not.toThrow();
    easy.close();
  });
});

// ---------------------------------------------------------------------------
// Proxies
// ---------------------------------------------------------------------------

interface ProxyServer {
  url: string;
  connections: number;
  /** Absolute-form request targets and CONNECT authorities it was asked for. */
  seen: string[];
  close(): Promise<void>;
}

/** A forward proxy on 127.0.0.1: plain HTTP requests are answered by itself, CONNECT is tunnelled. */
async function startProxy(): Promise<ProxyServer> {
  const state = { connections: 0, seen: [] as string[] };
  const sockets = new Set<net.Socket>();
  const track = (sock: net.Socket): void => {
    sockets.add(sock);
    sock.on('error', () => undefined);
    sock.once('close', () => sockets.delete(sock));
  };
  const server = http.createServer((req, res) => {
    state.seen.push(`${req.method} ${req.url}`);
    const body = 'answered by the proxy\n';
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.on('connection', (sock: net.Socket) => {
    state.connections += 1;
    track(sock);
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    state.seen.push(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? '').split(':');
    // Only ever tunnel to loopback.
    if (host !== '127.0.0.1' && host !== 'localhost') {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const upstream = net.connect(Number(port), '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    track(upstream);
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return state.connections;
    },
    get seen() {
      return state.seen;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const sock of sockets) sock.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}

const PROXY_VARS = ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY', 'no_proxy', 'NO_PROXY'];

describe('proxies (including the proxy environment variables) are off', () => {
  let proxy: ProxyServer;
  let tls: TestServer;
  const saved = new Map<string, string | undefined>();

  beforeAll(async () => {
    proxy = await startProxy();
    tls = await startHttpsServer({ host: '127.0.0.1' });
    for (const name of PROXY_VARS) saved.set(name, process.env[name]);
  });
  afterEach(() => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  afterAll(async () => {
    await Promise.all([proxy.close(), tls.close()]);
  });

  function setProxyEnv(name: string): void {
    for (const n of PROXY_VARS) delete process.env[n];
    process.env[name] = proxy.url;
  }

  // libcurl reads http_proxy only in lower case for http:// (the "httpoxy" rule), so an
  // upper-case HTTP_PROXY is not used even without a policy.
  const httpCases: Array<{ name: string; honouredByLibcurl: boolean }> = [
    { name: 'http_proxy', honouredByLibcurl: true },
    { name: 'HTTP_PROXY', honouredByLibcurl: false },
    { name: 'all_proxy', honouredByLibcurl: true },
    { name: 'ALL_PROXY', honouredByLibcurl: true },
  ];

  for (const { name, honouredByLibcurl } of httpCases) {
    it(`${name}: a plain handle ${honouredByLibcurl ? 'uses' : 'ignores'} it; a policy handle goes direct`, async () => {
      setProxyEnv(name);
      const url = `${web.url}/hello`;

      const plainSeen = proxy.seen.length;
      const plain = new Easy().setopt('URL', url);
      const p = await performOnce(plain);
      plain.close();
      if (honouredByLibcurl) {
        expect(p.body.toString()).toBe('answered by the proxy\n');
        expect(proxy.seen.slice(plainSeen)).toEqual([`GET ${url}`]);
      } else {
        expect(p.body.toString()).toBe('hello world\n');
        expect(proxy.seen.length).toBe(plainSeen);
      }

      const proxyConnections = proxy.connections;
      const proxySeen = proxy.seen.length;
      const webRequests = web.requests;
      const hardened = new IpPolicy({ allow: ['127.0.0.1/32'] }).apply(new Easy()).setopt('URL', url);
      const t = await performOnce(hardened);
      expect(t.body.toString()).toBe('hello world\n');
      expect(t.info.primaryPort).toBe(web.port);
      expect(web.requests).toBe(webRequests + 1);
      expect(proxy.connections).toBe(proxyConnections);
      expect(proxy.seen.length).toBe(proxySeen);
      hardened.close();
    });
  }

  for (const name of ['https_proxy', 'HTTPS_PROXY']) {
    it(`${name}: a plain handle tunnels through the proxy; a policy handle goes direct`, async () => {
      setProxyEnv(name);
      const url = `${tls.url}/hello`;

      const plainSeen = proxy.seen.length;
      const plain = new Easy().setopt('URL', url).setopt('CAINFO', TEST_CA_FILE);
      const p = await performOnce(plain);
      plain.close();
      expect(p.body.toString()).toBe('hello world\n');
      expect(proxy.seen.slice(plainSeen)).toEqual([`CONNECT 127.0.0.1:${tls.port}`]);

      const proxyConnections = proxy.connections;
      const proxySeen = proxy.seen.length;
      const tlsConnections = tls.connections;
      const hardened = new IpPolicy({ allow: ['127.0.0.1/32'] })
        .apply(new Easy())
        .setopt('URL', url)
        .setopt('CAINFO', TEST_CA_FILE);
      const t = await performOnce(hardened);
      expect(t.body.toString()).toBe('hello world\n');
      expect(t.info.primaryPort).toBe(tls.port);
      expect(tls.connections).toBe(tlsConnections + 1);
      expect(proxy.connections).toBe(proxyConnections);
      expect(proxy.seen.length).toBe(proxySeen);
      hardened.close();
    });
  }

  it('a PROXY set before apply() is switched off too', async () => {
    for (const n of PROXY_VARS) delete process.env[n];
    const proxyConnections = proxy.connections;
    const easy = new Easy().setopt('PROXY', proxy.url).setopt('URL', `${web.url}/hello`);
    new IpPolicy({ allow: ['127.0.0.1/32'] }).apply(easy);
    const t = await performOnce(easy);
    expect(t.body.toString()).toBe('hello world\n');
    expect(proxy.connections).toBe(proxyConnections);
    easy.close();
  });

  it('after apply() every proxy, protocol, socket and DoH option is locked (TypeError); a failed setopt changes nothing', async () => {
    const easy = new IpPolicy().apply(new Easy());
    expectAllLocked(easy);
    for (const [name, value] of LOCKED_OPTIONS) {
      let message = '';
      try {
        setoptByName(easy, name, value);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, name).toMatch(/IpPolicy/);
    }
    // Still hardened: no proxy was taken, loopback still blocked.
    const proxyConnections = proxy.connections;
    const before = web.connections;
    easy.setopt('URL', `${web.url}/hello`);
    expectBlocked(await rejection(performOnce(easy)), { address: '127.0.0.1', reason: 'loopback' });
    expect(web.connections).toBe(before);
    expect(proxy.connections).toBe(proxyConnections);
    easy.close();
  });

  it('useConnectedSocket() throws after apply() and does not take the socket', async () => {
    const easy = new IpPolicy({ allow: ['127.0.0.1/32'] }).apply(new Easy());
    const sock = net.connect(web.port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('error', reject);
    });
    expect(() => easy.useConnectedSocket(sock)).toThrow(TypeError);
    expect(sock.destroyed).toBe(false);
    expect(() => easy.useConnectedSocket(2_000_000)).toThrow(TypeError);
    sock.destroy();
    easy.close();
  });
});

// ---------------------------------------------------------------------------
// Unix sockets
// ---------------------------------------------------------------------------

describe('Unix sockets', () => {
  let unix: UnixTestServer;

  beforeAll(async () => {
    unix = await startUnixServer();
  });
  afterAll(async () => {
    await unix.close();
  });

  it('UNIX_SOCKET_PATH and ABSTRACT_UNIX_SOCKET cannot be set after apply()', () => {
    const easy = new IpPolicy({ allowUnixSockets: true }).apply(new Easy());
    expect(() => easy.setopt('UNIX_SOCKET_PATH', unix.path)).toThrow(TypeError);
    expect(() => easy.setopt('ABSTRACT_UNIX_SOCKET', 'curl-sockets-test')).toThrow(TypeError);
    expect(unix.connections).toBe(0);
    easy.close();
  });

  it('a UNIX_SOCKET_PATH set before apply() is cleared: the URL host is judged instead', async () => {
    const before = unix.connections;
    const easy = new Easy().setopt('UNIX_SOCKET_PATH', unix.path).setopt('URL', `http://localhost:${web.port}/hello`);
    new IpPolicy().apply(easy);
    const beforeWeb = web.connections + shadow6.connections;
    const cause = expectBlocked(await rejection(performOnce(easy)), { port: web.port, reason: 'loopback' });
    expect(['127.0.0.1', '::1']).toContain(cause.address);
    expect(unix.connections).toBe(before);
    expect(web.connections + shadow6.connections).toBe(beforeWeb);
    easy.close();
  });

  it('policy.opensocket as a plain OPENSOCKETFUNCTION refuses a Unix socket (reason unix-socket)', async () => {
    const before = unix.connections;
    const policy = new IpPolicy();
    const easy = new Easy()
      .setopt('UNIX_SOCKET_PATH', unix.path)
      .setopt('OPENSOCKETFUNCTION', policy.opensocket)
      .setopt('URL', `${unix.url}/hello`);
    expectBlocked(await rejection(performOnce(easy)), {
      address: unix.path,
      port: 0,
      family: AF_UNIX,
      reason: 'unix-socket',
    });
    expect(unix.connections).toBe(before);
    easy.close();
  });

  // No listener here: Node binds abstract names padded to the full sun_path, which libcurl's
  // exact-length address never matches, so only the refusal itself is checked.
  it('policy.opensocket refuses an abstract Unix socket too', async () => {
    const name = `curl-sockets-policy-${process.pid}`;
    const easy = new Easy()
      .setopt('ABSTRACT_UNIX_SOCKET', name)
      .setopt('OPENSOCKETFUNCTION', new IpPolicy().opensocket)
      .setopt('URL', 'http://localhost/hello');
    expectBlocked(await rejection(performOnce(easy)), {
      address: `\0${name}`,
      port: 0,
      family: AF_UNIX,
      reason: 'unix-socket',
    });
    easy.close();
  });

  it('allowUnixSockets: true lets the same Unix transfer through', async () => {
    const before = unix.connections;
    const policy = new IpPolicy({ allowUnixSockets: true });
    const easy = new Easy()
      .setopt('UNIX_SOCKET_PATH', unix.path)
      .setopt('OPENSOCKETFUNCTION', policy.opensocket)
      .setopt('URL', `${unix.url}/hello`);
    const t = await performOnce(easy);
    expect(t.status).toBe(200);
    expect(t.body.toString()).toBe('hello world\n');
    expect(unix.connections).toBe(before + 1);
    easy.close();
  });

  it('allowUnixSockets does not loosen the IP rules', async () => {
    const before = web.connections;
    const policy = new IpPolicy({ allowUnixSockets: true });
    const easy = new Easy().setopt('OPENSOCKETFUNCTION', policy.opensocket).setopt('URL', `${web.url}/hello`);
    expectBlocked(await rejection(performOnce(easy)), { address: '127.0.0.1', reason: 'loopback' });
    expect(web.connections).toBe(before);
    easy.close();
  });
});

// ---------------------------------------------------------------------------
// file:// and other protocols
// ---------------------------------------------------------------------------

describe('only http and https', () => {
  let raw: TestServer;

  beforeAll(async () => {
    raw = await startRawTcpServer((sock) => sock.destroy());
  });
  afterAll(async () => {
    await raw.close();
  });

  it('control: a plain handle reads file:///etc/passwd', async () => {
    const easy = new Easy().setopt('URL', 'file:///etc/passwd');
    const t = await performOnce(easy);
    easy.close();
    expect(t.body.toString()).toContain('root:');
  });

  it('file:///etc/passwd after apply(): CURLE_UNSUPPORTED_PROTOCOL and no body', async () => {
    const easy = new IpPolicy().apply(new Easy()).setopt('URL', 'file:///etc/passwd');
    const chunks = collectBody(easy);
    expectCurlCode(await rejection(performOnce(easy)), 'CURLE_UNSUPPORTED_PROTOCOL');
    expect(chunks).toEqual([]);
    easy.close();
  });

  it('control: a plain handle that allows every redirect protocol follows a redirect to file://', async () => {
    const easy = new Easy()
      .setopt('URL', `${web.url}/redirect-to?url=${encodeURIComponent('file:///etc/passwd')}`)
      .setopt('FOLLOWLOCATION', true)
      .setopt('REDIR_PROTOCOLS_STR', 'all');
    const t = await performOnce(easy);
    expect(t.body.toString()).toContain('root:');
    easy.close();
  });

  it('a redirect from an allowed http server to file:///etc/passwd is refused, the file is not read', async () => {
    const before = web.requests;
    const easy = new IpPolicy({ allow: ['127.0.0.1/32'] })
      .apply(new Easy())
      .setopt('URL', `${web.url}/redirect-to?url=${encodeURIComponent('file:///etc/passwd')}`)
      .setopt('FOLLOWLOCATION', true);
    const chunks = collectBody(easy);
    expectCurlCode(await rejection(performOnce(easy)), 'CURLE_UNSUPPORTED_PROTOCOL');
    expect(Buffer.concat(chunks).toString()).not.toContain('root:');
    expect(web.requests).toBe(before + 1);
    easy.close();
  });

  const schemes = ['gopher', 'dict', 'ftp', 'telnet', 'ldap', 'smtp', 'imap', 'pop3', 'rtsp', 'mqtt', 'ws', 'scp', 'sftp', 'smb'];
  for (const scheme of schemes) {
    it(`${scheme}:// to an allowed loopback address: CURLE_UNSUPPORTED_PROTOCOL, no connection`, async () => {
      const before = raw.connections;
      const easy = new IpPolicy({ allow: ['127.0.0.1/32'] })
        .apply(new Easy())
        .setopt('URL', `${scheme}://127.0.0.1:${raw.port}/x`);
      expectCurlCode(await rejection(performOnce(easy)), 'CURLE_UNSUPPORTED_PROTOCOL');
      expect(raw.connections).toBe(before);
      easy.close();
    });
  }

  it('a redirect to gopher:// on an allowed address is refused without a connection', async () => {
    const before = raw.connections;
    const easy = new IpPolicy({ allow: ['127.0.0.1/32'] })
      .apply(new Easy())
      .setopt('URL', `${web.url}/redirect-to?url=${encodeURIComponent(`gopher://127.0.0.1:${raw.port}/_x`)}`)
      .setopt('FOLLOWLOCATION', true);
    expectCurlCode(await rejection(performOnce(easy)), 'CURLE_UNSUPPORTED_PROTOCOL');
    expect(raw.connections).toBe(before);
    easy.close();
  });
});

// ---------------------------------------------------------------------------
// DoH
// ---------------------------------------------------------------------------

function canUnshareNet(): boolean {
  const r = spawnSync('unshare', ['-rn', 'sh', '-c', 'ip link set lo up'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0;
}

describe('DoH is refused', () => {
  it('DOH_URL cannot be set after apply()', () => {
    const easy = new IpPolicy().apply(new Easy());
    expect(() => easy.setopt('DOH_URL', 'https://127.0.0.1:9/dns-query')).toThrow(TypeError);
    expect(() => easy.setopt('DOH_URL', null)).toThrow(TypeError);
    easy.close();
  });

  it.skipIf(!canUnshareNet())('a DOH_URL set before apply() is cleared (child in a fresh network namespace)', () => {
    const child = path.join(__dirname, 'children', 'policy-doh.mjs');
    const r = spawnSync('unshare', ['-rn', 'sh', '-c', 'ip link set lo up && exec "$0" "$1"', process.execPath, child], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim()) as {
      plain: { ok: boolean; code?: string };
      plainDoh: number;
      hardened: { ok: boolean; isCurlError?: boolean; code?: string; causeName?: string | null };
      hardenedDoh: number;
      relock: string | null;
      targetConnections: number;
    };
    // Without a policy, the lookup goes to the DoH server.
    expect(out.plainDoh).toBeGreaterThan(0);
    // With the policy, DOH_URL is gone: no DoH connection (the system resolver has no network here).
    expect(out.hardenedDoh).toBe(0);
    expect(out.hardened.ok).toBe(false);
    expect(out.hardened.code).toBe('CURLE_COULDNT_RESOLVE_HOST');
    expect(out.relock).toBe('TypeError');
    expect(out.targetConnections).toBe(0);
  });
});

// ---------------------------------------------------------------------------
// Connection reuse
// ---------------------------------------------------------------------------

describe('connection reuse is judged by the real peer', () => {
  let server: TestServer;
  let multi: Multi;

  beforeAll(async () => {
    server = await startHttpServer({ host: '127.0.0.1' });
  });
  afterAll(async () => {
    await server.close();
  });

  // A fresh pool and fresh counters per test.
  const fresh = (): void => {
    multi = new Multi();
    server.resetCounters();
  };
  afterEach(() => {
    multi?.close();
  });

  it('a connection pooled by a policy-less handle on the same Multi is not reused by a policy handle', async () => {
    fresh();
    const plain = new Easy().setopt('URL', `${server.url}/hello`);
    expect((await multi.perform(plain)).status).toBe(200);
    expect(server.connections).toBe(1);
    expect(server.requests).toBe(1);

    const hardened = new IpPolicy().apply(new Easy()).setopt('URL', `${server.url}/hello`);
    const chunks = collectBody(hardened);
    expectBlocked(await rejection(multi.perform(hardened)), {
      code: 'CURLE_ABORTED_BY_CALLBACK',
      address: '127.0.0.1',
      port: server.port,
      family: AF_INET,
      reason: 'loopback',
    });
    expect(server.connections).toBe(1);
    expect(server.requests).toBe(1);
    expect(chunks).toEqual([]);

    // Its owner can still use the server (libcurl closes a connection whose request a prereq aborted).
    expect((await multi.perform(plain)).status).toBe(200);
    plain.close();
    hardened.close();
  });

  it('a connection opened by the same handle before apply() is not reused to reach the denied address', async () => {
    fresh();
    const easy = new Easy().setopt('URL', `${server.url}/hello`);
    expect((await multi.perform(easy)).status).toBe(200);
    expect(server.connections).toBe(1);
    expect(server.requests).toBe(1);

    new IpPolicy().apply(easy);
    expectBlocked(await rejection(multi.perform(easy)), {
      code: 'CURLE_ABORTED_BY_CALLBACK',
      address: '127.0.0.1',
      port: server.port,
      reason: 'loopback',
    });
    expect(server.connections).toBe(1);
    expect(server.requests).toBe(1);
    easy.close();
  });

  it('the same on the default Multi (easy.perform())', async () => {
    server.resetCounters();
    const easy = new Easy().setopt('URL', `${server.url}/connection-info`);
    expect((await easy.perform()).status).toBe(200);
    const connections = server.connections;
    const requests = server.requests;
    new IpPolicy().apply(easy);
    expectBlocked(await rejection(easy.perform()), { code: 'CURLE_ABORTED_BY_CALLBACK', reason: 'loopback' });
    expect(server.connections).toBe(connections);
    expect(server.requests).toBe(requests);
    easy.close();
  });

  it('a pooled connection to loopback under a name is not reused after that name is RESOLVEd elsewhere', async () => {
    fresh();
    const name = 'pooled.test';
    const plain = new Easy()
      .setopt('URL', `http://${name}:${server.port}/hello`)
      .setopt('RESOLVE', [`${name}:${server.port}:127.0.0.1`]);
    expect((await multi.perform(plain)).status).toBe(200);
    expect(server.connections).toBe(1);

    // The hardened handle believes the name is a (denied, public) address; the pool holds a
    // connection for the same host and port whose real peer is loopback.
    const hardened = new IpPolicy({ deny: ['93.184.216.0/24'] })
      .apply(new Easy())
      .setopt('URL', `http://${name}:${server.port}/hello`)
      .setopt('RESOLVE', [`${name}:${server.port}:93.184.216.34`]);
    const guard = guardConnect(hardened);
    const err = await rejection(multi.perform(hardened));
    // Whichever path libcurl takes, no packet leaves and the loopback server gets no request.
    expect(guard.calls).toBe(0);
    expect(server.connections).toBe(1);
    expect(server.requests).toBe(1);
    // libcurl reuses by host name and port, so the block comes from the prereq peer check,
    // which judges the real peer (loopback), not the address the handle resolved.
    expectBlocked(err, {
      code: 'CURLE_ABORTED_BY_CALLBACK',
      address: '127.0.0.1',
      port: server.port,
      reason: 'loopback',
    });
    plain.close();
    hardened.close();
  });

  it('with 127.0.0.1 allowed, reuse works: one connection over 5 performs', async () => {
    fresh();
    const easy = new IpPolicy({ allow: ['127.0.0.1/32'] }).apply(new Easy()).setopt('URL', `${server.url}/hello`);
    for (let i = 0; i < 5; i++) {
      const t = await multi.perform(easy);
      expect(t.status).toBe(200);
    }
    expect(server.connections).toBe(1);
    expect(server.requests).toBe(5);
    easy.close();
  });

  it('with 127.0.0.1 allowed, a policy handle reuses a connection pooled by another handle', async () => {
    fresh();
    const plain = new Easy().setopt('URL', `${server.url}/hello`);
    await multi.perform(plain);
    const hardened = new IpPolicy({ allow: ['127.0.0.1/32'] }).apply(new Easy()).setopt('URL', `${server.url}/hello`);
    for (let i = 0; i < 3; i++) expect((await multi.perform(hardened)).status).toBe(200);
    expect(server.connections).toBe(1);
    expect(server.requests).toBe(4);
    plain.close();
    hardened.close();
  });
});

// libcurl's DoH lookups run as internal transfers that open their sockets
// without OPENSOCKETFUNCTION, and leave their connection in the Multi's pool,
// where a policy handle can reuse it: the prereq check must still find that
// socket and judge its real peer.
describe("connection reuse: a connection pooled by libcurl's own DoH lookup", () => {
  let doh: DohServer;
  let target: TestServer;
  let multi: Multi | undefined;

  beforeAll(async () => {
    doh = await startDohServer();
    target = await startHttpServer({ host: '127.0.0.1' });
  });
  afterAll(async () => {
    await doh.close();
    await target.close();
  });
  afterEach(() => {
    multi?.close();
    multi = undefined;
  });

  /** A fresh Multi whose pool holds the TLS connection of one DoH lookup. */
  async function poolDohConnection(): Promise<Multi> {
    const m = new Multi();
    const viaDoh = new Easy()
      .setopt('URL', `http://doh-pooled.test:${target.port}/hello`)
      .setopt('DOH_URL', doh.url)
      .setopt('CAINFO', TEST_CA_FILE);
    const connections = doh.connections;
    const queries = doh.queries;
    expect((await m.perform(viaDoh)).status).toBe(200);
    viaDoh.close();
    expect(doh.connections).toBeGreaterThan(connections); // one per query on libcurl 7.88, one in all on 8.x
    expect(doh.queries).toBeGreaterThan(queries);
    return m;
  }

  const toDohServer = (policy: IpPolicy): Easy =>
    policy.apply(new Easy()).setopt('URL', `https://127.0.0.1:${doh.port}/`).setopt('CAINFO', TEST_CA_FILE);

  it('with 127.0.0.1 allowed, a policy handle reuses it', async () => {
    multi = await poolDohConnection();
    const connections = doh.connections;
    const requests = doh.otherRequests;
    const easy = toDohServer(new IpPolicy({ allow: ['127.0.0.1/32'] }));
    const t = await multi.perform(easy);
    expect(t.status).toBe(200);
    expect(t.body.toString()).toBe('not a query\n');
    expect(doh.connections).toBe(connections); // the DoH lookup's connection, reused
    expect(doh.otherRequests).toBe(requests + 1);
    easy.close();
  });

  it('with loopback denied, its reuse is blocked by its real peer', async () => {
    multi = await poolDohConnection();
    const connections = doh.connections;
    const requests = doh.otherRequests;
    const easy = toDohServer(new IpPolicy());
    expectBlocked(await rejection(multi.perform(easy)), {
      code: 'CURLE_ABORTED_BY_CALLBACK',
      address: '127.0.0.1',
      port: doh.port,
      family: AF_INET,
      reason: 'loopback',
    });
    expect(doh.connections).toBe(connections);
    expect(doh.otherRequests).toBe(requests);
    easy.close();
  });
});

describe('connection reuse: more paths to a pooled connection', () => {
  let a: CountingServer; // 127.0.0.1
  let b: CountingServer; // 127.0.0.2
  let multi: Multi | undefined;

  beforeAll(async () => {
    a = await startCountingServer('127.0.0.1');
    b = await startCountingServer('127.0.0.2');
  });
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
  });
  afterEach(() => {
    multi?.close();
    multi = undefined;
  });

  it('IPv4-mapped connections: allowed reuse works (no false block), denied reuse is blocked as loopback', async () => {
    multi = new Multi();
    const url = `http://[::ffff:7f00:1]:${a.port}/hello`;
    const before = a.connections;
    const allowed = new IpPolicy({ allow: ['127.0.0.0/8'] }).apply(new Easy()).setopt('URL', url);
    for (let i = 0; i < 3; i++) expect((await multi.perform(allowed)).status).toBe(200);
    expect(a.connections).toBe(before + 1);

    const requests = a.requests.length;
    const denied = new IpPolicy().apply(new Easy()).setopt('URL', url);
    expectBlocked(await rejection(multi.perform(denied)), {
      code: 'CURLE_ABORTED_BY_CALLBACK',
      address: '::ffff:127.0.0.1',
      port: a.port,
      family: AF_INET6,
      reason: 'loopback',
    });
    expect(a.connections).toBe(before + 1);
    expect(a.requests.length).toBe(requests);
    allowed.close();
    denied.close();
  });

  it('connections to 0.0.0.0 (the kernel connects them to 127.0.0.1) are re-checked by their real peer', async () => {
    multi = new Multi();
    const url = `http://0.0.0.0:${a.port}/hello`;
    const before = a.connections;
    const allowed = new IpPolicy({ allow: ['0.0.0.0/8', '127.0.0.1/32'] }).apply(new Easy()).setopt('URL', url);
    for (let i = 0; i < 3; i++) expect((await multi.perform(allowed)).status).toBe(200);
    expect(a.connections).toBe(before + 1);

    // 0.0.0.0 allowed, but the pooled connection's real peer (127.0.0.1) is not.
    const requests = a.requests.length;
    const denied = new IpPolicy({ allow: ['0.0.0.0/8'] }).apply(new Easy()).setopt('URL', url);
    expectBlocked(await rejection(multi.perform(denied)), {
      code: 'CURLE_ABORTED_BY_CALLBACK',
      address: '127.0.0.1',
      port: a.port,
      family: AF_INET,
      reason: 'loopback',
    });
    expect(a.connections).toBe(before + 1);
    expect(a.requests.length).toBe(requests);
    allowed.close();
    denied.close();
  });

  // Linux hands the same local port to connections towards different peers.
  // The re-check must judge the connection with exactly the 4-tuple libcurl
  // reports, also when the only socket with that 4-tuple is one the binding
  // does not track (libcurl's DoH connections) and a tracked socket shares its
  // local address, local port and peer port with another peer. The child
  // forces the shared port with a one-port ephemeral range in its own network
  // namespace.
  it.skipIf(!canUnshareNet())('findSocket picks the exact 4-tuple, not a tracked socket that shares the local port with another peer', () => {
    const child = path.join(__dirname, 'children', 'find-socket-shared-port.mjs');
    const script = 'ip link set lo up && echo "40000 40000" > /proc/sys/net/ipv4/ip_local_port_range && exec "$0" "$1"';
    const r = spawnSync('unshare', ['-rn', 'sh', '-c', script, process.execPath, child], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim()) as {
      status: number;
      localPort: number;
      untrackedLocalPort: number;
      untrackedFd: number;
      exact: number;
      trackedByItsOwn: number;
      nobody: number;
    };
    expect(out.status).toBe(200);
    expect(out.untrackedLocalPort).toBe(out.localPort); // the shared local port
    expect(out.untrackedFd).toBeGreaterThan(2);
    expect(out.exact).toBe(out.untrackedFd);
    expect(out.trackedByItsOwn).toBeGreaterThan(2);
    expect(out.trackedByItsOwn).not.toBe(out.untrackedFd);
    expect(out.nobody).toBe(-1); // no near match for a 4-tuple nobody has
  });

  it('[::1] connections: allowed reuse works, denied reuse is blocked', async () => {
    multi = new Multi();
    const url = `${web6.url}/hello`;
    const before = web6.connections;
    const allowed = new IpPolicy({ allow: ['::1'] }).apply(new Easy()).setopt('URL', url);
    for (let i = 0; i < 3; i++) expect((await multi.perform(allowed)).status).toBe(200);
    expect(web6.connections).toBe(before + 1);
    const requests = web6.requests;
    const denied = new IpPolicy().apply(new Easy()).setopt('URL', url);
    expectBlocked(await rejection(multi.perform(denied)), {
      code: 'CURLE_ABORTED_BY_CALLBACK',
      address: '::1',
      family: AF_INET6,
      reason: 'loopback',
    });
    expect(web6.connections).toBe(before + 1);
    expect(web6.requests).toBe(requests);
    allowed.close();
    denied.close();
  });

  it('a reset() or duphandle()d policy handle still re-checks a pooled connection', async () => {
    multi = new Multi();
    const url = `http://127.0.0.1:${a.port}/hello`;
    const plain = new Easy().setopt('URL', url);
    await multi.perform(plain);
    const connections = a.connections;
    const requests = a.requests.length;

    const original = new IpPolicy().apply(new Easy());
    const copy = original.duphandle();
    original.reset();
    for (const easy of [original, copy]) {
      easy.setopt('URL', url);
      expectBlocked(await rejection(multi.perform(easy)), {
        code: 'CURLE_ABORTED_BY_CALLBACK',
        address: '127.0.0.1',
        reason: 'loopback',
      });
      // The connection may be closed by the abort; make sure the next round has one pooled again.
      await multi.perform(plain);
    }
    expect(a.requests.length).toBe(requests + 2); // only the plain handle's own requests
    expect(a.connections).toBeGreaterThanOrEqual(connections);
    plain.close();
    original.close();
    copy.close();
  });

  it('HTTP/2 (prior knowledge): a pooled h2 connection is re-checked too', async () => {
    expect(CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE).toBe(5); // curl.h's value
    const priorKnowledge = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE as number;
    const h2 = await import('node:http2');
    let connections = 0;
    let streams = 0;
    const server = h2.createServer((_req, res) => {
      streams += 1;
      res.end('h2 hello\n');
    });
    server.on('connection', () => {
      connections += 1;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as net.AddressInfo).port;
    try {
      multi = new Multi();
      const url = `http://127.0.0.1:${port}/hello`;
      const plain = new Easy().setopt('URL', url).setopt('HTTP_VERSION', priorKnowledge);
      expect((await multi.perform(plain)).info.httpVersion).toBe(CURL_HTTP_VERSION_2_0);
      expect(connections).toBe(1);

      const denied = new IpPolicy()
        .apply(new Easy())
        .setopt('URL', url)
        .setopt('HTTP_VERSION', priorKnowledge);
      expectBlocked(await rejection(multi.perform(denied)), {
        code: 'CURLE_ABORTED_BY_CALLBACK',
        address: '127.0.0.1',
        reason: 'loopback',
      });
      expect(streams).toBe(1);
      expect(connections).toBe(1);

      const allowed = new IpPolicy({ allow: ['127.0.0.1/32'] })
        .apply(new Easy())
        .setopt('URL', url)
        .setopt('HTTP_VERSION', priorKnowledge);
      if (HANDED_SOCKETS) {
        for (let i = 0; i < 3; i++) expect((await multi.perform(allowed)).status).toBe(200);
        expect(streams).toBe(4);
      } else {
        // libcurl 7.88.1 leaves an HTTP/2 connection broken after a PREREQFUNCTION
        // abort on it: later streams fail with CURLE_HTTP2 (it fails closed).
        await expect(multi.perform(allowed)).rejects.toMatchObject({ code: 'CURLE_HTTP2' });
        expect(streams).toBe(1);
      }
      plain.close();
      denied.close();
      allowed.close();
    } finally {
      multi?.close();
      multi = undefined;
      server.close();
    }
  });

  it.runIf(HANDED_SOCKETS)('a connection made over a handed-in socket (useConnectedSocket) is not used by a policy handle', async () => {
    multi = new Multi();
    const url = `http://127.0.0.1:${a.port}/hello`;
    // The plain handle's connection goes to 127.0.0.2 although its URL names 127.0.0.1.
    const plain = new Easy().setopt('URL', url);
    plain.useConnectedSocket(await connectTo(b.port, '127.0.0.2'));
    expect((await multi.perform(plain)).body.toString()).toBe('hello from 127.0.0.2\n');
    const bRequests = b.requests.length;

    const hardened = new IpPolicy({ allow: ['127.0.0.1/32'] }).apply(new Easy()).setopt('URL', url);
    const t = await multi.perform(hardened);
    expect(t.body.toString()).toBe('hello from 127.0.0.1\n');
    expect(b.requests.length).toBe(bRequests);
    plain.close();
    hardened.close();
  });

  it.runIf(HANDED_SOCKETS)('the same handle: after apply() its handed-in connection is not used again', async () => {
    multi = new Multi();
    const url = `http://127.0.0.1:${a.port}/hello`;
    const easy = new Easy().setopt('URL', url);
    easy.useConnectedSocket(await connectTo(b.port, '127.0.0.2'));
    expect((await multi.perform(easy)).body.toString()).toBe('hello from 127.0.0.2\n');
    const bRequests = b.requests.length;

    new IpPolicy({ allow: ['127.0.0.1/32'] }).apply(easy);
    let outcome: unknown;
    try {
      outcome = (await multi.perform(easy)).body.toString();
    } catch (err) {
      outcome = err;
    }
    // Either a fresh connection to the allowed 127.0.0.1, or a block of the reused one.
    if (typeof outcome === 'string') expect(outcome).toBe('hello from 127.0.0.1\n');
    else expectBlocked(outcome, { code: 'CURLE_ABORTED_BY_CALLBACK', address: '127.0.0.2' });
    expect(b.requests.length).toBe(bRequests);
    easy.close();
  });

  it.runIf(HANDED_SOCKETS)('a socket handed in before apply() is dropped (closed) and never used', async () => {
    const url = `http://127.0.0.1:${a.port}/hello`;
    const easy = new Easy().setopt('URL', url);
    const openBefore = b.openConnections();
    const bRequests = b.requests.length;
    easy.useConnectedSocket(await connectTo(b.port, '127.0.0.2'));
    await waitFor(() => b.openConnections() === openBefore + 1, 5_000, 'the handed-in connection to be accepted');

    new IpPolicy({ allow: ['127.0.0.1/32'] }).apply(easy);
    await waitFor(() => b.openConnections() === openBefore, 5_000, 'the dropped socket to be closed');
    const t = await performOnce(easy);
    expect(t.body.toString()).toBe('hello from 127.0.0.1\n');
    expect(b.requests.length).toBe(bRequests);
    easy.close();
  });

  // libcurl hands PREREQFUNCTION only the connection's addresses; IpPolicy finds the socket by
  // its local IP and port. Two connections can share a local address (Linux reuses an
  // ephemeral port for different destinations; LOCALPORT + SO_REUSEADDR forces it here), and the
  // check must still judge the peer of the connection that is actually reused.
  const SO_REUSEADDR_LINUX = 2; // not exported by curl-sockets; asm-generic value on Linux
  for (const order of ['allowed peer first', 'denied peer first'] as const) {
    it.runIf(process.platform === 'linux')(
      `reuse is judged by the reused connection's own peer when another socket shares its local address (${order})`,
      async () => {
        multi = new Multi();
        const localPort = await closedPort();
        const reuseAddr = (fd: number): number => {
          setSocketOption(fd, SOL_SOCKET, SO_REUSEADDR_LINUX, 1);
          return CURL_SOCKOPT_OK;
        };
        const victim = `http://victim.test:${b.port}/hello`;
        const resolve = [`victim.test:${b.port}:127.0.0.2`];
        const toA = new Easy()
          .setopt('URL', `http://127.0.0.1:${a.port}/hello`)
          .setopt('LOCALPORT', localPort)
          .setopt('SOCKOPTFUNCTION', reuseAddr);
        const toB = new Easy()
          .setopt('URL', victim)
          .setopt('RESOLVE', resolve)
          .setopt('LOCALPORT', localPort)
          .setopt('SOCKOPTFUNCTION', reuseAddr);
        for (const easy of order === 'allowed peer first' ? [toA, toB] : [toB, toA]) {
          const t = await multi.perform(easy);
          expect(t.status).toBe(200);
          expect(t.info.localIp).toBe('127.0.0.1');
          expect(t.info.localPort).toBe(localPort);
        }
        const bConnections = b.connections;
        const bRequests = b.requests.length;

        // Only 127.0.0.1 is allowed; the pooled connection for victim.test goes to 127.0.0.2.
        const hardened = new IpPolicy({ allow: ['127.0.0.1/32'] })
          .apply(new Easy())
          .setopt('URL', victim)
          .setopt('RESOLVE', resolve);
        const chunks = collectBody(hardened);
        const err = await rejection(multi.perform(hardened));
        expect(b.requests.length).toBe(bRequests);
        expect(Buffer.concat(chunks).toString()).not.toContain('hello from 127.0.0.2');
        expect(b.connections).toBe(bConnections);
        expectBlocked(err, { code: 'CURLE_ABORTED_BY_CALLBACK', address: '127.0.0.2', port: b.port, reason: 'loopback' });
        toA.close();
        toB.close();
        hardened.close();
      },
    );
  }
});

// ---------------------------------------------------------------------------
// reset() and duphandle()
// ---------------------------------------------------------------------------

describe('reset() and duphandle() keep the policy', () => {
  it('reset(): still blocks, locks still throw, still only http(s)', async () => {
    const easy = new IpPolicy().apply(new Easy());
    easy.reset();
    expectAllLocked(easy);
    const before = web.connections;
    easy.setopt('URL', `${web.url}/hello`);
    expectBlocked(await rejection(performOnce(easy)), { address: '127.0.0.1', reason: 'loopback' });
    expect(web.connections).toBe(before);
    easy.setopt('URL', 'file:///etc/passwd');
    expectCurlCode(await rejection(performOnce(easy)), 'CURLE_UNSUPPORTED_PROTOCOL');
    easy.close();
  });

  it('reset() keeps an allow policy working (and a second reset too)', async () => {
    const easy = new IpPolicy({ allow: ['127.0.0.1/32'] }).apply(new Easy());
    for (let i = 0; i < 2; i++) {
      easy.reset();
      easy.setopt('URL', `${web.url}/hello`);
      expect((await performOnce(easy)).status).toBe(200);
      const before = web6.connections;
      easy.setopt('URL', `${web6.url}/hello`);
      expectBlocked(await rejection(performOnce(easy)), { address: '::1', reason: 'loopback' });
      expect(web6.connections).toBe(before);
    }
    easy.close();
  });

  it('duphandle(): the copy blocks, is locked, and keeps working after the original is closed', async () => {
    const original = new IpPolicy().apply(new Easy()).setopt('URL', `${web.url}/hello`);
    const copy = original.duphandle();
    original.close();
    expectAllLocked(copy);
    const before = web.connections;
    expectBlocked(await rejection(performOnce(copy)), { address: '127.0.0.1', port: web.port, reason: 'loopback' });
    expect(web.connections).toBe(before);
    copy.reset();
    copy.setopt('URL', `${web.url}/hello`);
    expectBlocked(await rejection(performOnce(copy)), { address: '127.0.0.1', reason: 'loopback' });
    expect(web.connections).toBe(before);
    copy.close();
  });

  it('duphandle() of an allow policy: the copy gets through to 127.0.0.1 and not to ::1', async () => {
    const original = new IpPolicy({ allow: ['127.0.0.1/32'] }).apply(new Easy()).setopt('URL', `${web.url}/hello`);
    const copy = original.duphandle();
    expect((await performOnce(copy)).status).toBe(200);
    const before = web6.connections;
    copy.setopt('URL', `${web6.url}/hello`);
    expectBlocked(await rejection(performOnce(copy)), { address: '::1', reason: 'loopback' });
    expect(web6.connections).toBe(before);
    original.close();
    copy.close();
  });
});

// ---------------------------------------------------------------------------
// Blocked vs unreachable
// ---------------------------------------------------------------------------

describe('blocked vs unreachable', () => {
  it('a closed port with 127.0.0.1 allowed: CURLE_COULDNT_CONNECT without a BlockedAddressError', async () => {
    const port = await closedPort();
    const easy = new IpPolicy({ allow: ['127.0.0.1/32'] }).apply(new Easy()).setopt('URL', `http://127.0.0.1:${port}/`);
    const err = expectCurlCode(await rejection(performOnce(easy)), 'CURLE_COULDNT_CONNECT');
    expect(err.cause).toBeUndefined();
    easy.close();
  });

  it('the same closed port under the default policy: CURLE_COULDNT_CONNECT with a BlockedAddressError', async () => {
    const port = await closedPort();
    const easy = new IpPolicy().apply(new Easy()).setopt('URL', `http://127.0.0.1:${port}/`);
    expectBlocked(await rejection(performOnce(easy)), { address: '127.0.0.1', port, reason: 'loopback' });
    easy.close();
  });
});

/**
 * Easy failures: connect errors, timeouts, aborts, invalid setopt/getinfo
 * input (the handle keeps working afterwards), option defaults restored with
 * null, misuse of handles in flight or closed, and closing handles with
 * transfers in flight.
 */
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CurlError, Easy, Multi } from '../dist/index.js';
import { startHttpServer, startHttpsServer, type TestServer } from './helpers/servers';
import { rejection, closedPort, waitUntil as waitFor } from './helpers/wait';

/** The error `fn` throws synchronously; fails the test if it does not throw. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw, but nothing was thrown');
}

/**
 * The error a call that "is an error" produces: either thrown synchronously
 * or as a rejection of the promise it returns.
 */
async function failureOf(fn: () => Promise<unknown>): Promise<unknown> {
  let p: Promise<unknown>;
  try {
    p = fn();
  } catch (err) {
    return err;
  }
  return rejection(p);
}

let http: TestServer;

beforeAll(async () => {
  http = await startHttpServer();
});

afterAll(async () => {
  await http.close();
});

describe('connect failures and timeouts', () => {
  it('connection refused -> CURLE_COULDNT_CONNECT, curlCode 7, osErrno ECONNREFUSED', async () => {
    const port = await closedPort();
    const easy = new Easy().setopt('URL', `http://127.0.0.1:${port}/`);
    try {
      const err = await rejection(easy.perform());
      expect(err).toBeInstanceOf(CurlError);
      expect(err).toBeInstanceOf(Error);
      const ce = err as CurlError;
      expect(ce.name).toBe('CurlError');
      expect(ce.code).toBe('CURLE_COULDNT_CONNECT');
      expect(ce.curlCode).toBe(7);
      expect(ce.osErrno).toBe(111); // ECONNREFUSED on Linux
      expect(ce.message.length).toBeGreaterThan(0);
      expect(easy.getinfo('OS_ERRNO')).toBe(111);
    } finally {
      easy.close();
    }
  });

  it('TIMEOUT_MS 200 against /slow?ms=3000 -> CURLE_OPERATION_TIMEDOUT within about 1 s', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/slow?ms=3000`).setopt('TIMEOUT_MS', 200);
    try {
      const start = performance.now();
      const err = await rejection(easy.perform());
      const elapsed = performance.now() - start;
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLE_OPERATION_TIMEDOUT');
      expect((err as CurlError).curlCode).toBe(28);
      expect(elapsed).toBeGreaterThanOrEqual(150);
      expect(elapsed).toBeLessThan(1000);
    } finally {
      easy.close();
    }
  });
});

describe('AbortSignal', () => {
  it('aborting mid-transfer rejects with AbortError within 100 ms; the next perform opens a new connection', async () => {
    const server = await startHttpServer();
    const easy = new Easy().setopt('URL', `${server.url}/drip?chunks=100&interval=50`);
    let received = 0;
    easy.setopt('XFERINFOFUNCTION', (_dltotal: number, dlnow: number) => {
      received = dlnow;
      return 0;
    });
    const controller = new AbortController();
    try {
      const promise = easy.perform({ signal: controller.signal });
      let settledAt = -1;
      promise.then(
        () => {
          settledAt = performance.now();
        },
        () => {
          settledAt = performance.now();
        },
      );
      // Wait until the first chunks (1 KiB each) have arrived.
      expect(await waitFor(() => received >= 2048, 10_000)).toBe(true);
      expect(settledAt).toBe(-1);
      const abortedAt = performance.now();
      controller.abort();
      const err = await rejection(promise);
      expect(settledAt).toBeGreaterThan(0);
      expect(settledAt - abortedAt).toBeLessThan(100);
      expect((err as Error).name).toBe('AbortError');
      expect(err).toBeInstanceOf(Error);
      // The whole drip would take ~5 s: it was cut short.
      expect(received).toBeLessThan(100 * 1024);
      expect(server.connections).toBe(1);

      // The aborted connection is not reused: the next transfer connects anew.
      easy.setopt('XFERINFOFUNCTION', null);
      easy.setopt('URL', `${server.url}/hello`);
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(t.body.toString()).toBe('hello world\n');
      expect(t.info.numConnects).toBe(1);
      expect(server.connections).toBe(2);
    } finally {
      easy.close();
      await server.close();
    }
  });

  it('aborting with a reason keeps it as the cause', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/slow?ms=3000`);
    const controller = new AbortController();
    const reason = new Error('my reason');
    try {
      const promise = easy.perform({ signal: controller.signal });
      setTimeout(() => controller.abort(reason), 100);
      const err = await rejection(promise);
      expect((err as Error).name).toBe('AbortError');
      expect((err as Error).cause).toBe(reason);
    } finally {
      easy.close();
    }
  });

  it('an already-aborted signal rejects at once, without connecting', async () => {
    const server = await startHttpServer();
    const easy = new Easy().setopt('URL', `${server.url}/hello`);
    try {
      const start = performance.now();
      const err = await rejection(easy.perform({ signal: AbortSignal.abort() }));
      expect(performance.now() - start).toBeLessThan(100);
      expect((err as Error).name).toBe('AbortError');
      expect(server.connections).toBe(0);
      // The handle is not left "in a transfer".
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(server.connections).toBe(1);
    } finally {
      easy.close();
      await server.close();
    }
  });

  it('a signal that is no AbortSignal is a TypeError, and the Easy stays usable', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/hello`);
    try {
      for (const signal of [{}, true, { aborted: false }]) {
        const err = thrown(() => easy.perform({ signal: signal as unknown as AbortSignal }));
        expect(err).toBeInstanceOf(TypeError);
        expect((err as Error).message).toContain('AbortSignal');
      }
      expect((await easy.perform()).status).toBe(200);
    } finally {
      easy.close();
    }
  });

  it('a signal aborted after the transfer finished changes nothing', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/hello`);
    const controller = new AbortController();
    try {
      const t = await easy.perform({ signal: controller.signal });
      controller.abort();
      expect(t.status).toBe(200);
      const t2 = await easy.perform();
      expect(t2.status).toBe(200);
    } finally {
      easy.close();
    }
  });
});

describe('invalid input throws and leaves the handle usable', () => {
  type Case = [label: string, fn: (easy: Easy) => unknown, type: ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor, mention?: string];
  // The casts bypass the typed API on purpose: these are the mistakes untyped callers make.
  const setoptAny = (easy: Easy, name: string, value: unknown): unknown =>
    (easy.setopt as (n: string, v: unknown) => Easy)(name, value);
  const cases: Case[] = [
    ['unknown option name', (e) => setoptAny(e, 'NO_SUCH_OPTION_XYZ', 1), TypeError, 'NO_SUCH_OPTION_XYZ'],
    ['URL with a number', (e) => setoptAny(e, 'URL', 5), TypeError, 'URL'],
    ['FOLLOWLOCATION with a string', (e) => setoptAny(e, 'FOLLOWLOCATION', 'yes'), TypeError, 'FOLLOWLOCATION'],
    ['HTTPHEADER with a string', (e) => setoptAny(e, 'HTTPHEADER', 'x'), TypeError, 'HTTPHEADER'],
    ['HTTPHEADER with a non-string item', (e) => setoptAny(e, 'HTTPHEADER', ['a: b', 7]), TypeError, 'HTTPHEADER'],
    ['TIMEOUT_MS with a boolean', (e) => setoptAny(e, 'TIMEOUT_MS', true), TypeError, 'TIMEOUT_MS'],
    ['URL with a NUL byte', (e) => setoptAny(e, 'URL', 'http://127.0.0.1/\0evil'), TypeError, 'URL'],
    ['HTTPHEADER item with a NUL byte', (e) => setoptAny(e, 'HTTPHEADER', ['X-A: a\0b']), TypeError, 'HTTPHEADER'],
    ['TIMEOUT_MS 2**64', (e) => setoptAny(e, 'TIMEOUT_MS', 2 ** 64), RangeError, 'TIMEOUT_MS'],
    ['TIMEOUT_MS 1.5', (e) => setoptAny(e, 'TIMEOUT_MS', 1.5), RangeError, 'TIMEOUT_MS'],
    ['TIMEOUT_MS NaN', (e) => setoptAny(e, 'TIMEOUT_MS', Number.NaN), RangeError, 'TIMEOUT_MS'],
    ['TIMEOUT_MS Infinity', (e) => setoptAny(e, 'TIMEOUT_MS', Number.POSITIVE_INFINITY), RangeError, 'TIMEOUT_MS'],
    ['owned WRITEDATA', (e) => setoptAny(e, 'WRITEDATA', {}), TypeError, 'WRITEDATA'],
    ['owned FILE (alias of WRITEDATA)', (e) => setoptAny(e, 'FILE', {}), TypeError],
    ['owned ERRORBUFFER', (e) => setoptAny(e, 'ERRORBUFFER', Buffer.alloc(256)), TypeError, 'ERRORBUFFER'],
    ['owned PRIVATE', (e) => setoptAny(e, 'PRIVATE', 1), TypeError, 'PRIVATE'],
    ['owned SHARE', (e) => setoptAny(e, 'SHARE', 1), TypeError, 'SHARE'],
    ['owned NOSIGNAL', (e) => setoptAny(e, 'NOSIGNAL', 0), TypeError, 'NOSIGNAL'],
    ['unsupported READFUNCTION', (e) => setoptAny(e, 'READFUNCTION', () => 0), TypeError, 'READFUNCTION'],
    ['raw pointer STDERR', (e) => setoptAny(e, 'STDERR', 2), TypeError, 'STDERR'],
    ['unknown info name', (e) => (e.getinfo as (n: string) => unknown)('NO_SUCH_INFO_XYZ'), TypeError, 'NO_SUCH_INFO_XYZ'],
  ];

  it.each(cases)('%s', async (_label, fn, type, mention) => {
    const server = await startHttpServer();
    const easy = new Easy().setopt('URL', `${server.url}/echo`).setopt('HTTPHEADER', ['X-Before: kept']);
    try {
      const err = thrown(() => fn(easy));
      expect(err).toBeInstanceOf(type);
      expect(err).not.toBeInstanceOf(CurlError);
      if (mention !== undefined) expect((err as Error).message).toContain(mention);
      // Nothing was applied, and the handle still works with its earlier options.
      const t = await easy.perform();
      expect(t.status).toBe(200);
      const echo = JSON.parse(t.body.toString()) as { url: string; method: string; headers: Record<string, string> };
      expect(echo.url).toBe('/echo');
      expect(echo.method).toBe('GET');
      expect(echo.headers['x-before']).toBe('kept');
      expect(server.lastRequest?.url).toBe('/echo');
    } finally {
      easy.close();
      await server.close();
    }
  });

  it('many bad inputs in a row, then a good transfer on the same handle', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/hello`);
    try {
      for (const [, fn, type] of cases) expect(thrown(() => fn(easy))).toBeInstanceOf(type);
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(t.body.toString()).toBe('hello world\n');
    } finally {
      easy.close();
    }
  });

  it('wrong-type messages name the expected type', () => {
    const easy = new Easy();
    try {
      expect((thrown(() => setoptAny(easy, 'URL', 5)) as Error).message).toMatch(/string/i);
      expect((thrown(() => setoptAny(easy, 'HTTPHEADER', 'x')) as Error).message).toMatch(/array/i);
      expect((thrown(() => setoptAny(easy, 'TIMEOUT_MS', 'x')) as Error).message).toMatch(/number/i);
    } finally {
      easy.close();
    }
  });
});

describe('null restores defaults', () => {
  it("setopt('URL', null) then perform -> CurlError CURLE_URL_MALFORMAT", async () => {
    const easy = new Easy().setopt('URL', `${http.url}/hello`).setopt('URL', null);
    try {
      const err = await rejection(easy.perform());
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLE_URL_MALFORMAT');
      expect((err as CurlError).curlCode).toBe(3);
      // And the handle works again once a URL is set.
      easy.setopt('URL', `${http.url}/hello`);
      expect((await easy.perform()).status).toBe(200);
    } finally {
      easy.close();
    }
  });

  it("TIMEOUT_MS null restores no timeout; URL and HTTPHEADER set earlier stay in effect", async () => {
    const server = await startHttpServer();
    const easy = new Easy()
      .setopt('URL', `${server.url}/slow?ms=400`)
      .setopt('HTTPHEADER', ['X-Keep: yes'])
      .setopt('TIMEOUT_MS', 100);
    try {
      // The timeout is really in effect first.
      const err = await rejection(easy.perform());
      expect((err as CurlError).code).toBe('CURLE_OPERATION_TIMEDOUT');

      easy.setopt('TIMEOUT_MS', null);
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(t.body.toString()).toBe('slow');
      expect(server.lastRequest?.url).toBe('/slow?ms=400');
      expect(server.lastRequest?.headers['x-keep']).toBe('yes');
    } finally {
      easy.close();
      await server.close();
    }
  });

  it('restoring one default keeps callbacks and POSTFIELDS set earlier', async () => {
    const server = await startHttpServer();
    const headerLines: string[] = [];
    const easy = new Easy()
      .setopt('URL', `${server.url}/echo`)
      .setopt('POSTFIELDS', 'kept-body')
      .setopt('HEADERFUNCTION', (chunk: Buffer) => {
        headerLines.push(chunk.toString('latin1'));
        return chunk.length;
      })
      .setopt('TIMEOUT_MS', 5000)
      .setopt('TIMEOUT_MS', null);
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      const echo = JSON.parse(t.body.toString()) as { method: string; body: string };
      expect(echo.method).toBe('POST');
      expect(echo.body).toBe('kept-body');
      expect(headerLines[0]).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      easy.close();
      await server.close();
    }
  });
});

describe('null restores defaults: what libcurl holds', () => {
  it('a replay sends the POSTFIELDS bytes of the setopt call, not what the caller\'s Buffer holds later', async () => {
    const body = Buffer.from('AAAA');
    const easy = new Easy().setopt('URL', `${http.url}/echo`).setopt('POSTFIELDS', body);
    try {
      body.fill('B');
      easy.setopt('TIMEOUT', 5).setopt('TIMEOUT', null);  // reset + replay
      const copy = easy.duphandle();
      try {
        for (const handle of [easy, copy]) {
          const echo = JSON.parse((await handle.perform()).body.toString()) as { body: string };
          expect(echo.body).toBe('AAAA');
        }
      } finally {
        copy.close();
      }
    } finally {
      easy.close();
    }
  });

  it('a replay sends the HTTPHEADER list of the setopt call, not the caller\'s array as changed later', async () => {
    const headers = ['X-Kept: 1'];
    const easy = new Easy().setopt('URL', `${http.url}/echo`).setopt('HTTPHEADER', headers);
    try {
      headers.push('X-Added-Later: 1');
      easy.setopt('TIMEOUT', 5).setopt('TIMEOUT', null);  // reset + replay
      const echo = JSON.parse((await easy.perform()).body.toString()) as { headers: Record<string, string> };
      expect(echo.headers['x-kept']).toBe('1');
      expect(echo.headers['x-added-later']).toBeUndefined();
    } finally {
      easy.close();
    }
  });

  it('CAINFO null gives the built-in CA file back, as on a fresh handle', async () => {
    // libcurl names the CA file it uses in its debug text; NULL would be "none".
    const https = await startHttpsServer();
    const caFileOf = async (easy: Easy): Promise<string | undefined> => {
      let caFile: string | undefined;
      easy
        .setopt('URL', `${https.url}/hello`)  // self-signed: the handshake fails either way, after the text
        .setopt('VERBOSE', true)
        .setopt('DEBUGFUNCTION', (type: number, data: Buffer) => {
          const m = /CAfile: (\S+)/.exec(data.toString('latin1'));
          if (m) caFile = m[1];
        });
      await rejection(easy.perform());
      return caFile;
    };
    const fresh = new Easy();
    const restored = new Easy().setopt('CAINFO', '/nonexistent/ca.pem');
    restored.setopt('CAINFO', null);
    try {
      const expected = await caFileOf(fresh);
      expect(expected).toMatch(/^\//);
      const actual = await caFileOf(restored);
      expect(actual).toBe(expected);
    } finally {
      fresh.close();
      restored.close();
      await https.close();
    }
  });
});

describe('handle state misuse', () => {
  it('performing an Easy that is in flight is an Error; setopt in flight throws; the first transfer still succeeds', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/slow?ms=300`);
    try {
      const first = easy.perform();
      const err = await failureOf(() => easy.perform());
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(CurlError);
      const setoptErr = thrown(() => easy.setopt('URL', `${http.url}/hello`));
      expect(setoptErr).toBeInstanceOf(Error);
      const t = await first;
      expect(t.status).toBe(200);
      expect(t.body.toString()).toBe('slow');
      // Idle again: both work now.
      easy.setopt('URL', `${http.url}/hello`);
      expect((await easy.perform()).body.toString()).toBe('hello world\n');
    } finally {
      easy.close();
    }
  });

  it('perform on a closed Easy throws; close() is idempotent', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/hello`);
    expect(easy.closed).toBe(false);
    easy.close();
    expect(easy.closed).toBe(true);
    expect(() => easy.close()).not.toThrow();
    expect(() => easy.close()).not.toThrow();
    expect(easy.closed).toBe(true);
    const err = await failureOf(() => easy.perform());
    expect(err).toBeInstanceOf(Error);
    expect(thrown(() => easy.setopt('URL', `${http.url}/hello`))).toBeInstanceOf(Error);
    expect(thrown(() => easy.getinfo('RESPONSE_CODE'))).toBeInstanceOf(Error);
  });

  it('[Symbol.dispose]() closes the handle (using-style)', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/hello`);
    expect((await easy.perform()).status).toBe(200);
    expect(typeof easy[Symbol.dispose]).toBe('function');
    easy[Symbol.dispose]();
    expect(easy.closed).toBe(true);
    expect(await failureOf(() => easy.perform())).toBeInstanceOf(Error);
    expect(() => easy[Symbol.dispose]()).not.toThrow();
  });

  it('a Multi can be disposed too, after which perform throws', async () => {
    const multi = new Multi();
    const easy = new Easy().setopt('URL', `${http.url}/hello`);
    try {
      expect((await multi.perform(easy)).status).toBe(200);
      multi[Symbol.dispose]();
      expect(await failureOf(() => multi.perform(easy))).toBeInstanceOf(Error);
      multi.close();
      // The Easy itself is unharmed.
      expect((await easy.perform()).status).toBe(200);
    } finally {
      easy.close();
    }
  });
});

describe('closing handles with transfers in flight', () => {
  it('closing an Easy mid-transfer rejects its promise with AbortError', async () => {
    const server = await startHttpServer();
    const easy = new Easy().setopt('URL', `${server.url}/slow?ms=5000`);
    try {
      const promise = easy.perform();
      expect(await waitFor(() => server.requests === 1, 10_000)).toBe(true);
      const start = performance.now();
      easy.close();
      const err = await rejection(promise);
      expect(performance.now() - start).toBeLessThan(1000);
      expect((err as Error).name).toBe('AbortError');
      expect(easy.closed).toBe(true);
      // The server sees its connection go away.
      expect(await waitFor(() => server.openConnections() === 0, 5000)).toBe(true);
    } finally {
      easy.close();
      await server.close();
    }
  });

  it('closing a Multi with 5 transfers in flight rejects all 5', async () => {
    const server = await startHttpServer();
    const multi = new Multi();
    const easies = Array.from({ length: 5 }, (_, i) => new Easy().setopt('URL', `${server.url}/slow?ms=5000&i=${i}`));
    try {
      const promises = easies.map((e) => multi.perform(e));
      expect(multi.running).toBe(5);
      expect(await waitFor(() => server.requests === 5, 10_000)).toBe(true);
      const start = performance.now();
      multi.close();
      const results = await Promise.allSettled(promises);
      expect(performance.now() - start).toBeLessThan(1000);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected', 'rejected']);
      for (const r of results) {
        expect(((r as PromiseRejectedResult).reason as Error).name).toBe('AbortError');
      }
      expect(multi.running).toBe(0);
      expect(await waitFor(() => server.openConnections() === 0, 5000)).toBe(true);
      // The Easy handles are free again and work on the default Multi.
      easies[0]!.setopt('URL', `${server.url}/hello`);
      expect((await easies[0]!.perform()).status).toBe(200);
    } finally {
      multi.close();
      for (const e of easies) e.close();
      await server.close();
    }
  });
});

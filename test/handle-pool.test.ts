/**
 * The pool of libcurl handles of closed Easy objects (src/handle_pool.h): a
 * new Easy takes a kept handle instead of curl_easy_init. What must hold: a
 * kept handle carries nothing of its previous Easy into the next one, a
 * handle that may hold state curl_easy_reset keeps (cookies, a handle taken
 * out of a transfer) is never kept, and the pool is bounded. On libcurl
 * before 8.12 (TLS sessions belong to the handle there) nothing is kept.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Easy, libcurlVersion } from '../dist/index.js';
import { native } from '../dist/native.js';
import { echoOf, startHttpServer, type EchoReply, type TestServer } from './helpers/servers';
import { rejection, sleep } from './helpers/wait';

const [major, minor] = libcurlVersion.split('.').map(Number) as [number, number];
const POOLED = major > 8 || (major === 8 && minor >= 12);
const MAX_IDLE = 64;

let http: TestServer;

beforeAll(async () => {
  http = await startHttpServer();
});

afterAll(async () => {
  await http.close();
});

/** Empties the pool, so the next `n` new Easy objects get fresh handles. */
function drainPool(): Easy[] {
  const taken: Easy[] = [];
  while (native.idleHandleCount() > 0) taken.push(new Easy());
  return taken;
}

async function echo(easy: Easy): Promise<EchoReply> {
  const t = await easy.setopt('URL', `${http.url}/echo`).perform();
  expect(t.status).toBe(200);
  return echoOf(t.body);
}

describe.runIf(POOLED)('handle pool (libcurl >= 8.12)', () => {
  it('a closed Easy leaves its handle for the next new Easy; at most 64 are kept', async () => {
    const held = drainPool();
    const easy = new Easy();
    await echo(easy);
    easy.close();
    expect(native.idleHandleCount()).toBe(1);
    const next = new Easy();
    expect(native.idleHandleCount()).toBe(0);
    next.close();
    expect(native.idleHandleCount()).toBe(1);

    const many = Array.from({ length: MAX_IDLE + 20 }, () => new Easy());
    for (const e of many) e.close();
    for (const e of held) e.close();
    expect(native.idleHandleCount()).toBe(MAX_IDLE);
  });

  it('nothing of the previous Easy reaches the next one: options, headers, body, callbacks', async () => {
    // Empty the pool: then the one kept handle below is the one `previous` used.
    const held = drainPool();
    const calls: string[] = [];
    const previous = new Easy()
      .setopt('HTTPHEADER', ['X-Previous: 1'])
      .setopt('USERAGENT', 'previous/1')
      .setopt('POSTFIELDS', 'secret=1')
      .setopt('FOLLOWLOCATION', true)
      .setopt('VERBOSE', true)
      .setopt('DEBUGFUNCTION', () => {
        calls.push('debug');
      })
      .setopt('PREREQFUNCTION', () => {
        calls.push('prereq');
        return 0;
      })
      .setopt('HEADERFUNCTION', (chunk: Buffer) => {
        calls.push('header');
        return chunk.length;
      })
      .setopt('XFERINFOFUNCTION', () => {
        calls.push('xferinfo');
        return 0;
      });
    const first = await echo(previous);
    expect(first.method).toBe('POST');
    expect(first.headers['x-previous']).toBe('1');
    expect(calls).toContain('prereq');
    previous.close();
    expect(native.idleHandleCount()).toBe(1);

    calls.length = 0;
    const next = new Easy();
    expect(native.idleHandleCount()).toBe(0); // it took the kept handle
    try {
      const reply = await echo(next);
      expect(reply.method).toBe('GET');
      expect(reply.body).toBe('');
      expect(reply.headers['x-previous']).toBeUndefined();
      expect(reply.headers['user-agent']).toBeUndefined();
      expect(calls).toEqual([]);
      // FOLLOWLOCATION is back to its default (off).
      const redirect = await next.setopt('URL', `${http.url}/redirect/1`).perform();
      expect(redirect.status).toBe(302);
      expect(calls).toEqual([]);
    } finally {
      next.close();
      for (const e of held) e.close();
    }
  });

  it('a handle whose cookie engine ran is not kept, and no later Easy sends its cookies', async () => {
    const held = drainPool();
    const jar = new Easy().setopt('COOKIEFILE', '');
    const t = await jar.setopt('URL', `${http.url}/headers`).perform();
    expect(t.status).toBe(200);
    // The cookie engine has the server's cookies: this handle sends them back.
    const sent = String((await echo(jar)).headers.cookie).split('; ').sort();
    expect(sent).toEqual(['a=1', 'b=2']);
    jar.close();
    expect(native.idleHandleCount()).toBe(0);
    for (let i = 0; i < 3; i++) {
      const other = new Easy();
      try {
        expect((await echo(other)).headers.cookie).toBeUndefined();
      } finally {
        other.close();
      }
    }
    for (const e of held) e.close();
  });

  it('a duphandle() copy of a cookie handle is not kept either', async () => {
    const held = drainPool();
    const jar = new Easy().setopt('COOKIEFILE', '');
    await jar.setopt('URL', `${http.url}/headers`).perform();
    const copy = jar.duphandle();
    const idle = native.idleHandleCount(); // the copy's own fresh handle went back unused
    jar.close();
    copy.close();
    expect(native.idleHandleCount()).toBe(idle);
    for (const e of held) e.close();
  });

  it('a handle closed in the middle of a transfer is kept once libcurl let it go, and serves the next Easy normally', async () => {
    const held = drainPool();
    const easy = new Easy().setopt('URL', `${http.url}/drip?chunks=50&interval=40`);
    const running = easy.perform();
    await sleep(150);
    easy.close();
    const err = await rejection(running);
    expect((err as Error).name).toBe('AbortError');
    expect(native.idleHandleCount()).toBe(1);
    const next = new Easy();
    try {
      const t = await next.setopt('URL', `${http.url}/hello`).perform();
      expect(t.status).toBe(200);
      expect(t.body.toString()).toBe('hello world\n');
      expect(next.getinfo('RESPONSE_CODE')).toBe(200);
    } finally {
      next.close();
      for (const e of held) e.close();
    }
  });
});

describe.runIf(!POOLED)(`handle pool (libcurl ${libcurlVersion}: off)`, () => {
  it('keeps no handle: a TLS session cache would go with it', async () => {
    const easy = new Easy();
    await echo(easy);
    easy.close();
    expect(native.idleHandleCount()).toBe(0);
  });
});

// curl_easy_reset keeps a RESOLVE list that no transfer has used yet as the
// list to load when the next transfer starts; the binding frees its lists
// after a reset, so the next transfer on that handle read freed memory.
describe('a RESOLVE list no transfer used', () => {
  const resolveEntry = (host: string): string => `${host}:${http.port}:127.0.0.1`;

  it('does not outlive close(): the next Easy (maybe on the same handle) works', async () => {
    for (let i = 0; i < 3; i++) {
      new Easy().setopt('RESOLVE', [resolveEntry(`unused-${i}.test`)]).close();
      const next = new Easy();
      try {
        expect((await echo(next)).url).toBe('/echo');
      } finally {
        next.close();
      }
    }
  });

  it('does not outlive reset() or null', async () => {
    const easy = new Easy();
    try {
      easy.setopt('RESOLVE', [resolveEntry('after-reset.test')]).reset();
      expect((await echo(easy)).url).toBe('/echo');
      easy.setopt('RESOLVE', [resolveEntry('after-null.test')]).setopt('RESOLVE', null);
      expect((await echo(easy)).url).toBe('/echo');
    } finally {
      easy.close();
    }
  });
});

/**
 * Wrappers of closed Easy objects (lib/easy.ts, Easy::Reopen in src/easy.cc):
 * close() hands the native wrapper to the next new Easy, which then skips
 * napi_wrap and leaves the GC no finalizer. What must hold: the next Easy
 * starts from nothing of the previous one (options, callbacks, a handed-in
 * socket, a transfer's error), the closed Easy can no longer reach the
 * wrapper, a close deferred until libcurl returns keeps its wrapper out, and
 * the spares are bounded. Unlike the handle pool, this works on every libcurl.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CURL_SOCKOPT_OK, CurlError, Easy, IpPolicy, Multi, createSocket, libcurlVersion } from '../dist/index.js';
import { internals, spareWrapperCount } from '../dist/easy.js';
import { native } from '../dist/native.js';
import { connectTcp, echoOf, startHttpServer, type EchoReply, type TestServer } from './helpers/servers';
import { rejection, sleep } from './helpers/wait';

const MAX_SPARE = 64;
const IS_788 = libcurlVersion.startsWith('7.88.');

let http: TestServer;

beforeAll(async () => {
  http = await startHttpServer();
});

afterAll(async () => {
  await http.close();
});

/** Takes every spare wrapper, so the next closed Easy's wrapper is the only one. */
function takeSpares(): Easy[] {
  const taken: Easy[] = [];
  while (spareWrapperCount() > 0) taken.push(new Easy());
  return taken;
}

async function echo(easy: Easy): Promise<EchoReply> {
  const t = await easy.setopt('URL', `${http.url}/echo`).perform();
  expect(t.status).toBe(200);
  return echoOf(t.body);
}

describe('wrappers of closed Easy objects', () => {
  it('a closed Easy leaves its wrapper for the next new Easy; at most 64 are kept', () => {
    const held = takeSpares();
    const easy = new Easy();
    easy.close();
    expect(spareWrapperCount()).toBe(1);
    easy.close();  // idempotent: not kept twice
    expect(spareWrapperCount()).toBe(1);
    const next = new Easy();
    expect(spareWrapperCount()).toBe(0);
    next.close();
    expect(spareWrapperCount()).toBe(1);

    const many = Array.from({ length: MAX_SPARE + 20 }, () => new Easy());
    for (const e of many) e.close();
    for (const e of held) e.close();
    expect(spareWrapperCount()).toBe(MAX_SPARE);
  });

  it('nothing of the previous Easy reaches the next one: options, every JS callback, the error', async () => {
    const held = takeSpares();
    const calls: string[] = [];
    const previous = new Easy()
      .setopt('HTTPHEADER', ['X-Previous: 1'])
      .setopt('POSTFIELDS', 'secret=1')
      .setopt('OPENSOCKETFUNCTION', (_purpose, address) => {
        calls.push('opensocket');
        return createSocket(address);
      })
      .setopt('SOCKOPTFUNCTION', () => {
        calls.push('sockopt');
        return CURL_SOCKOPT_OK;
      })
      .setopt('CLOSESOCKETFUNCTION', () => {
        calls.push('closesocket');
        return 0;
      })
      .setopt('PREREQFUNCTION', () => {
        calls.push('prereq');
        return 0;
      })
      .setopt('XFERINFOFUNCTION', () => {
        calls.push('xferinfo');
        return 0;
      })
      .setopt('DEBUGFUNCTION', () => {
        calls.push('debug');
      })
      .setopt('HEADERFUNCTION', (chunk: Buffer) => {
        calls.push('header');
        return chunk.length;
      })
      .setopt('WRITEFUNCTION', (chunk: Buffer) => {
        calls.push('write');
        return chunk.length;
      })
      .setopt('VERBOSE', true)
      .setopt('FORBID_REUSE', true);
    const first = await previous.setopt('URL', `${http.url}/echo`).perform();
    expect(first.status).toBe(200);
    expect(new Set(calls)).toEqual(
      new Set(['opensocket', 'sockopt', 'closesocket', 'prereq', 'xferinfo', 'debug', 'header', 'write']),
    );
    // A failed transfer leaves libcurl's error message in the wrapper's buffer.
    const failed = await rejection(previous.setopt('URL', 'http://127.0.0.1:1/').perform());
    expect(failed).toBeInstanceOf(CurlError);
    previous.close();
    expect(spareWrapperCount()).toBe(1);

    calls.length = 0;
    const next = new Easy();
    expect(spareWrapperCount()).toBe(0);  // it took the wrapper `previous` had
    try {
      expect(next.getinfo('RESPONSE_CODE')).toBe(0);
      const reply = await echo(next);
      expect(reply.method).toBe('GET');
      expect(reply.body).toBe('');
      expect(reply.headers['x-previous']).toBeUndefined();
      expect(calls).toEqual([]);
      // The body was gathered by the binding (no WRITEFUNCTION), headers too.
      const t = await next.setopt('URL', `${http.url}/hello`).perform();
      expect(t.body.toString()).toBe('hello world\n');
      expect(t.headers.some(([name]) => name.toLowerCase() === 'content-type')).toBe(true);
      expect(calls).toEqual([]);
      // Its own callbacks go into the slots the wrapper kept, and only they run.
      const own: string[] = [];
      next.setopt('WRITEFUNCTION', (chunk: Buffer) => {
        own.push(chunk.toString());
        return chunk.length;
      });
      next.setopt('PREREQFUNCTION', () => {
        own.push('prereq');
        return 0;
      });
      await next.perform();
      expect(own).toEqual(['prereq', 'hello world\n']);
      expect(calls).toEqual([]);
    } finally {
      next.close();
      for (const e of held) e.close();
    }
  });

  it('a closed Easy cannot reach the Easy that took its wrapper', async () => {
    const held = takeSpares();
    const previous = new Easy();
    previous.close();
    const next = new Easy().setopt('HTTPHEADER', ['X-Next: 1']);
    expect(spareWrapperCount()).toBe(0);
    try {
      expect(() => previous.setopt('URL', `${http.url}/hello`)).toThrow(/closed/);
      expect(() => previous.setopt('HTTPHEADER', null)).toThrow(/closed/);
      expect(() => previous.getinfo('RESPONSE_CODE')).toThrow(/closed/);
      expect(() => previous.reset()).toThrow(/closed/);
      expect(() => previous.duphandle()).toThrow(/closed/);
      expect(() => new IpPolicy().apply(previous)).toThrow(/closed/);
      expect(() => previous.perform()).toThrow(/closed/);
      previous.close();
      expect(spareWrapperCount()).toBe(0);
      // next still has its options and no policy.
      const reply = await echo(next);
      expect(reply.headers['x-next']).toBe('1');
      next.setopt('UNIX_SOCKET_PATH', null);  // not locked by an IpPolicy
    } finally {
      next.close();
      for (const e of held) e.close();
    }
  });

  it.skipIf(IS_788)('IpPolicy.apply on the closed Easy leaves the socket handed to the next one alone', async () => {
    const held = takeSpares();
    const previous = new Easy();
    previous.close();
    const sock = await connectTcp(http.port);
    const handedPort = sock.localPort;
    const next = new Easy().setopt('URL', `${http.url}/connection-info`);
    next.useConnectedSocket(sock);
    expect(spareWrapperCount()).toBe(0);
    try {
      expect(() => new IpPolicy().apply(previous)).toThrow(/closed/);
      const t = await next.perform();
      const info = JSON.parse(t.body.toString('utf8')) as { remotePort: number };
      expect(info.remotePort).toBe(handedPort);
    } finally {
      next.close();
      for (const e of held) e.close();
    }
  });

  it('an Easy closed from inside its own callback keeps its wrapper until libcurl lets go', async () => {
    const held = takeSpares();
    const easy = new Easy().setopt('URL', `${http.url}/hello`);
    easy.setopt('WRITEFUNCTION', (chunk: Buffer) => {
      easy.close();
      return chunk.length;
    });
    const err = await rejection(easy.perform());
    expect((err as Error).name).toBe('AbortError');
    await sleep(10);
    expect(spareWrapperCount()).toBe(0);
    const next = new Easy();
    try {
      const t = await next.setopt('URL', `${http.url}/hello`).perform();
      expect(t.body.toString()).toBe('hello world\n');
    } finally {
      next.close();
      for (const e of held) e.close();
    }
  });

  it('a transfer closed midway rejects, and its wrapper serves the next Easy normally', async () => {
    const held = takeSpares();
    const multi = new Multi();
    const easy = new Easy().setopt('URL', `${http.url}/drip?chunks=50&interval=40`);
    const running = multi.perform(easy);
    await sleep(150);
    easy.close();
    const err = await rejection(running);
    expect((err as Error).name).toBe('AbortError');
    expect(spareWrapperCount()).toBe(1);
    const next = new Easy();
    try {
      const t = await multi.perform(next.setopt('URL', `${http.url}/hello`));
      expect(t.status).toBe(200);
      expect(t.body.toString()).toBe('hello world\n');
    } finally {
      next.close();
      multi.close();
      for (const e of held) e.close();
    }
  });

  it.skipIf(IS_788)('a socket handed in and never used is closed with its Easy, not given to the next one', async () => {
    const held = takeSpares();
    const sock = await connectTcp(http.port);
    const handedPort = sock.localPort;
    const previous = new Easy();
    previous.useConnectedSocket(sock);
    previous.close();
    expect(spareWrapperCount()).toBe(1);
    const multi = new Multi();  // an empty connection pool
    const next = new Easy();
    try {
      const t = await multi.perform(next.setopt('URL', `${http.url}/connection-info`));
      expect(t.status).toBe(200);
      const info = JSON.parse(t.body.toString('utf8')) as { remotePort: number; requestIndexOnConnection: number };
      expect(info.remotePort).not.toBe(handedPort);
      expect(info.remotePort).toBe(next.getinfo('LOCAL_PORT'));
    } finally {
      next.close();
      multi.close();
      for (const e of held) e.close();
    }
  });

  it('native calls name their handle by id: an id of no handle throws or is refused, never reaches freed memory', () => {
    const CURLM_BAD_EASY_HANDLE = 2;
    const nativeMulti = new native.NativeMulti(false);
    try {
      for (const id of [-1, 2 ** 31, 1e9, 0.5, Number.NaN, 'x', undefined]) {
        expect(() => native.easy.setopt(id as number, 10002, 2, 'http://x/')).toThrow('the Easy is closed');
        expect(() => native.easy.close(id as number)).toThrow('the Easy is closed');
        expect(() => native.multi.running(id as number)).toThrow('the Multi is closed');
        expect(() => native.poller.stop(id as number)).toThrow('Poller is closed');
        expect(native.multi.add(nativeMulti.id, id as number, -1, 0)).toBe(CURLM_BAD_EASY_HANDLE);
      }
      // A closed Easy's wrapper may live on as a spare: its handle is gone, so add() refuses it.
      const easy = new Easy();
      const id = internals.native(easy).id;
      easy.close();
      expect(native.multi.add(nativeMulti.id, id, -1, 0)).toBe(CURLM_BAD_EASY_HANDLE);
    } finally {
      native.multi.close(nativeMulti.id);
    }
  });
});

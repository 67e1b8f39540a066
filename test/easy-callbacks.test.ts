/**
 * JS callbacks of an Easy: WRITEFUNCTION, HEADERFUNCTION (+HEADERDATA),
 * XFERINFOFUNCTION, DEBUGFUNCTION; faults inside callbacks; starting
 * transfers from promise reactions (node-libcurl issue 439) and the refusal
 * to re-enter libcurl from inside a callback; the async context callbacks
 * run in.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CurlError, Easy, Multi, type Transfer } from '../dist/index.js';
import { expectedBytes, startHttpServer, type TestServer } from './helpers/servers';
import { rejection } from './helpers/wait';

const CHILDREN_DIR = path.resolve(__dirname, 'children');

/** Runs node with `args` to its end: exit code and output. */
async function runChild(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { code, stdout, stderr };
}

let http: TestServer;

beforeAll(async () => {
  http = await startHttpServer();
});

afterAll(async () => {
  await http.close();
});

describe('WRITEFUNCTION', () => {
  it('receives Buffers whose concatenation is the body; Transfer.body is then empty', async () => {
    const n = 300_000;
    const chunks: Buffer[] = [];
    let calls = 0;
    const easy = new Easy().setopt('URL', `${http.url}/bytes?n=${n}`).setopt('WRITEFUNCTION', (chunk: Buffer) => {
      calls += 1;
      expect(Buffer.isBuffer(chunk)).toBe(true);
      // The chunk is only valid during the call: keep a copy.
      chunks.push(Buffer.from(chunk));
      return chunk.length;
    });
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(calls).toBeGreaterThan(1);
      const all = Buffer.concat(chunks);
      expect(all.length).toBe(n);
      expect(all.equals(expectedBytes(n))).toBe(true);
      expect(Buffer.isBuffer(t.body)).toBe(true);
      expect(t.body.length).toBe(0);
    } finally {
      easy.close();
    }
  });

  it('returning nothing (undefined) goes on', async () => {
    const chunks: Buffer[] = [];
    const easy = new Easy().setopt('URL', `${http.url}/hello`).setopt('WRITEFUNCTION', (chunk: Buffer) => {
      chunks.push(Buffer.from(chunk));
    });
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(Buffer.concat(chunks).toString()).toBe('hello world\n');
    } finally {
      easy.close();
    }
  });

  it('returning a different number aborts with CURLE_WRITE_ERROR', async () => {
    let calls = 0;
    const easy = new Easy().setopt('URL', `${http.url}/bytes?n=100000`).setopt('WRITEFUNCTION', (chunk: Buffer) => {
      calls += 1;
      return chunk.length - 1;
    });
    try {
      const err = await rejection(easy.perform());
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLE_WRITE_ERROR');
      expect((err as CurlError).curlCode).toBe(23);
      expect(calls).toBe(1);
    } finally {
      easy.close();
    }
  });

  it('a throw rejects with CURLE_WRITE_ERROR whose cause is the very Error thrown', async () => {
    const boom = new Error('boom from WRITEFUNCTION');
    let calls = 0;
    const easy = new Easy().setopt('URL', `${http.url}/bytes?n=100000`).setopt('WRITEFUNCTION', () => {
      calls += 1;
      throw boom;
    });
    try {
      const err = await rejection(easy.perform());
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLE_WRITE_ERROR');
      expect((err as CurlError).cause).toBe(boom);
      expect(calls).toBe(1);
      // The handle is usable afterwards, and the fault of the last transfer does not stick.
      easy.setopt('WRITEFUNCTION', null);
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(t.body.equals(expectedBytes(100000))).toBe(true);
    } finally {
      easy.close();
    }
  });

  it('a non-number return value is a fault with a TypeError cause', async () => {
    const easy = new Easy()
      .setopt('URL', `${http.url}/hello`)
      .setopt('WRITEFUNCTION', (() => 'nope') as unknown as (chunk: Buffer) => number);
    try {
      const err = await rejection(easy.perform());
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLE_WRITE_ERROR');
      expect((err as CurlError).cause).toBeInstanceOf(TypeError);
      expect(((err as CurlError).cause as Error).message).toContain('WRITEFUNCTION');
    } finally {
      easy.close();
    }
  });
});

describe('HEADERFUNCTION', () => {
  it('gets each header line, status line included, with HEADERDATA as clientp', async () => {
    const clientData = { tag: 'my-header-data' };
    const lines: string[] = [];
    const clientps: unknown[] = [];
    const easy = new Easy()
      .setopt('URL', `${http.url}/headers`)
      .setopt('HEADERDATA', clientData)
      .setopt('HEADERFUNCTION', (chunk: Buffer, clientp: unknown) => {
        lines.push(chunk.toString('latin1'));
        clientps.push(clientp);
        return chunk.length;
      });
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(lines[0]).toMatch(/^HTTP\/1\.1 200 OK\r\n$/);
      expect(lines[lines.length - 1]).toBe('\r\n');
      // One call per line.
      for (const line of lines) expect(line.endsWith('\r\n')).toBe(true);
      for (const line of lines) expect(line.indexOf('\n')).toBe(line.length - 1);
      const lower = lines.map((l) => l.toLowerCase());
      expect(lower.filter((l) => l.startsWith('set-cookie:'))).toEqual(['set-cookie: a=1; path=/\r\n', 'set-cookie: b=2; path=/\r\n']);
      expect(lower.filter((l) => l.startsWith('x-multi:'))).toEqual(['x-multi: a\r\n', 'x-multi: b\r\n']);
      expect(clientps.length).toBe(lines.length);
      for (const c of clientps) expect(c).toBe(clientData);
      // Transfer.headers is still filled natively.
      expect(t.headers.filter(([n]) => n.toLowerCase() === 'set-cookie')).toHaveLength(2);
      // The body is unaffected.
      expect(t.body.toString()).toBe('headers\n');
    } finally {
      easy.close();
    }
  });

  it('sees the status lines of every response across redirects', async () => {
    const statusLines: string[] = [];
    const easy = new Easy()
      .setopt('URL', `${http.url}/redirect/1`)
      .setopt('FOLLOWLOCATION', true)
      .setopt('HEADERFUNCTION', (chunk: Buffer) => {
        const line = chunk.toString('latin1');
        if (line.startsWith('HTTP/')) statusLines.push(line.trim());
      });
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(statusLines).toEqual(['HTTP/1.1 302 Found', 'HTTP/1.1 302 Found', 'HTTP/1.1 200 OK']);
    } finally {
      easy.close();
    }
  });

  it('a throw rejects with CURLE_WRITE_ERROR and the thrown Error as cause', async () => {
    const boom = new TypeError('boom from HEADERFUNCTION');
    const easy = new Easy().setopt('URL', `${http.url}/hello`).setopt('HEADERFUNCTION', () => {
      throw boom;
    });
    try {
      const err = await rejection(easy.perform());
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLE_WRITE_ERROR');
      expect((err as CurlError).cause).toBe(boom);
    } finally {
      easy.close();
    }
  });
});

describe('XFERINFOFUNCTION', () => {
  it('is called with progress numbers, and XFERINFODATA as clientp', async () => {
    const n = 200_000;
    const data = { tag: 'xfer' };
    const seen: Array<[number, number, number, number]> = [];
    const clientps: unknown[] = [];
    const easy = new Easy()
      .setopt('URL', `${http.url}/bytes?n=${n}`)
      .setopt('XFERINFODATA', data)
      .setopt('XFERINFOFUNCTION', (dltotal: number, dlnow: number, ultotal: number, ulnow: number, clientp?: unknown) => {
        seen.push([dltotal, dlnow, ultotal, ulnow]);
        clientps.push(clientp);
        return 0;
      });
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(t.body.length).toBe(n);
      expect(seen.length).toBeGreaterThan(0);
      for (const [dltotal, dlnow, ultotal, ulnow] of seen) {
        for (const v of [dltotal, dlnow, ultotal, ulnow]) expect(typeof v).toBe('number');
        expect(dlnow).toBeGreaterThanOrEqual(0);
        expect(dlnow).toBeLessThanOrEqual(n);
      }
      expect(Math.max(...seen.map((s) => s[1]))).toBe(n);
      expect(seen.some((s) => s[0] === n)).toBe(true);
      for (const c of clientps) expect(c).toBe(data);
    } finally {
      easy.close();
    }
  });

  it('returning 1 aborts with CURLE_ABORTED_BY_CALLBACK', async () => {
    let calls = 0;
    const easy = new Easy().setopt('URL', `${http.url}/slow?ms=2000`).setopt('XFERINFOFUNCTION', () => {
      calls += 1;
      return 1;
    });
    try {
      const start = Date.now();
      const err = await rejection(easy.perform());
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLE_ABORTED_BY_CALLBACK');
      expect((err as CurlError).curlCode).toBe(42);
      expect(calls).toBe(1);
      expect(Date.now() - start).toBeLessThan(1500);
    } finally {
      easy.close();
    }
  });

  it.each([
    ['setting it to null', 'null'],
    ['reset()', 'reset'],
  ])('removing it by %s restores the default: no progress meter is written to stderr', async (_, how) => {
    // libcurl's built-in progress meter prints to the process's stderr when
    // NOPROGRESS is 0 and no progress callback is set; run it in a child to see.
    const { code, stdout, stderr } = await runChild([path.join(CHILDREN_DIR, 'xferinfo-null.mjs'), `${http.url}/bytes?n=50000`, how]);
    expect(stdout).toContain('RESULT 200 50000');
    expect(code).toBe(0);
    expect(stderr).toBe('');
  }, 30_000);
});

describe('DEBUGFUNCTION', () => {
  it('with VERBOSE true gets (type, Buffer) for text, headers in and out', async () => {
    const events: Array<[number, Buffer]> = [];
    const easy = new Easy()
      .setopt('URL', `${http.url}/hello`)
      .setopt('VERBOSE', true)
      .setopt('DEBUGFUNCTION', (type: number, data: Buffer) => {
        expect(typeof type).toBe('number');
        expect(Buffer.isBuffer(data)).toBe(true);
        events.push([type, Buffer.from(data)]);
      });
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      // CURLINFO_TEXT 0, HEADER_IN 1, HEADER_OUT 2, DATA_IN 3
      const text = (type: number): string =>
        events
          .filter(([ty]) => ty === type)
          .map(([, d]) => d.toString('latin1'))
          .join('');
      expect(events.some(([ty]) => ty === 0)).toBe(true);
      expect(text(2)).toContain('GET /hello HTTP/1.1\r\n');
      expect(text(1)).toContain('HTTP/1.1 200 OK');
      expect(text(3)).toBe('hello world\n');
      for (const [ty] of events) expect(ty).toBeGreaterThanOrEqual(0);
    } finally {
      easy.close();
    }
  });

  it('a throw inside DEBUGFUNCTION does not crash the process', async () => {
    const easy = new Easy()
      .setopt('URL', `${http.url}/hello`)
      .setopt('VERBOSE', true)
      .setopt('DEBUGFUNCTION', () => {
        throw new Error('debug boom');
      });
    try {
      // Whether the transfer succeeds or fails, it settles, and the next one works.
      await easy.perform().catch((err: unknown) => {
        expect(err).toBeInstanceOf(CurlError);
        expect(((err as CurlError).cause as Error).message).toBe('debug boom');
      });
      easy.setopt('DEBUGFUNCTION', null).setopt('VERBOSE', false);
      expect((await easy.perform()).status).toBe(200);
    } finally {
      easy.close();
    }
  });
});

describe('transfers started from promise reactions (node-libcurl issue 439)', () => {
  it('50 transfers chained through .then() on one Easy all succeed', async () => {
    const server = await startHttpServer();
    const easy = new Easy();
    const bodies: string[] = [];
    const step = (i: number): Promise<number> => {
      if (i === 50) return Promise.resolve(i);
      easy.setopt('URL', `${server.url}/echo?step=${i}`);
      return easy.perform().then((t: Transfer) => {
        bodies.push((JSON.parse(t.body.toString()) as { url: string }).url);
        // Start the next transfer from inside the reaction of the finished one.
        return step(i + 1);
      });
    };
    try {
      expect(await step(0)).toBe(50);
      expect(bodies).toEqual(Array.from({ length: 50 }, (_, i) => `/echo?step=${i}`));
      expect(server.requests).toBe(50);
      expect(server.connections).toBe(1);
    } finally {
      easy.close();
      await server.close();
    }
  });

  it('50 transfers chained through .then(), each on a new Easy, all succeed', async () => {
    const done: number[] = [];
    const step = (i: number, prev?: Easy): Promise<void> => {
      prev?.close();
      if (i === 50) return Promise.resolve();
      const easy = new Easy().setopt('URL', `${http.url}/bytes?n=${i + 1}`);
      return easy.perform().then((t) => {
        expect(t.body.equals(expectedBytes(i + 1))).toBe(true);
        done.push(i);
        return step(i + 1, easy);
      });
    };
    await step(0);
    expect(done).toHaveLength(50);
  });

  it('a transfer started from a .then() on a separate Multi also succeeds', async () => {
    const multi = new Multi();
    const a = new Easy().setopt('URL', `${http.url}/hello`);
    const b = new Easy().setopt('URL', `${http.url}/status/204`);
    try {
      const t = await multi.perform(a).then(() => multi.perform(b));
      expect(t.status).toBe(204);
    } finally {
      a.close();
      b.close();
      multi.close();
    }
  });
});

describe('async context of the callbacks', () => {
  // A transfer's callbacks see the AsyncLocalStorage store of the perform()
  // that started it: neither the store the Multi was created in nor another
  // transfer's (security logs must name the right request).
  const als = new AsyncLocalStorage<string>();

  function tracedEasy(seen: Array<[string, string | undefined]>): Easy {
    return new Easy()
      .setopt('URL', `${http.url}/bytes?n=200000`)
      .setopt('FORBID_REUSE', true)
      .setopt('SOCKOPTFUNCTION', () => {
        seen.push(['sockopt', als.getStore()]);
        return 0;
      })
      .setopt('XFERINFOFUNCTION', () => {
        seen.push(['xferinfo', als.getStore()]);
        return 0;
      })
      .setopt('WRITEFUNCTION', (chunk: Buffer) => {
        seen.push(['write', als.getStore()]);
        return chunk.length;
      });
  }

  it('on a Multi created in another context, each of two concurrent transfers sees its own store', async () => {
    const multi = als.run('creator', () => new Multi());
    const seenA: Array<[string, string | undefined]> = [];
    const seenB: Array<[string, string | undefined]> = [];
    const a = tracedEasy(seenA);
    const b = tracedEasy(seenB);
    try {
      const [ta, tb] = await Promise.all([
        als.run('A', async () => {
          const t = await multi.perform(a);
          expect(als.getStore()).toBe('A');  // and the continuation, as always
          return t;
        }),
        als.run('B', () => multi.perform(b)),
      ]);
      expect(ta.status).toBe(200);
      expect(tb.status).toBe(200);
      for (const [seen, id] of [[seenA, 'A'], [seenB, 'B']] as const) {
        const kinds = new Set(seen.map(([kind]) => kind));
        expect([...kinds].sort()).toEqual(['sockopt', 'write', 'xferinfo']);
        expect(seen.filter(([, store]) => store !== id)).toEqual([]);
      }
    } finally {
      a.close();
      b.close();
      multi.close();
    }
  });

  it("a Multi's SOCKETFUNCTION, called from socket events, sees the store the Multi was created in", async () => {
    const multi = als.run('creator', () => new Multi());
    const stores: Array<string | undefined> = [];
    multi.setopt('SOCKETFUNCTION', () => {
      stores.push(als.getStore());
    });
    const easy = new Easy().setopt('URL', `${http.url}/bytes?n=200000`).setopt('FORBID_REUSE', true);
    try {
      const t = await als.run('caller', () => multi.perform(easy));
      expect(t.status).toBe(200);
      expect(stores.length).toBeGreaterThan(0);
      expect(stores.filter((store) => store !== 'creator')).toEqual([]);
    } finally {
      easy.close();
      multi.close();
    }
  });

  it("a Multi's and a Poller's callbacks keep their creator's store after the GC has run", async () => {
    // Node 20 and 22 find the store through the async context's resource
    // object: it must live as long as the Multi or Poller, not as long as the
    // GC lets it. Full GCs run between the creation and the callbacks.
    const { code, stdout, stderr } = await runChild(['--expose-gc', path.join(CHILDREN_DIR, 'async-context-gc.mjs')]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const seen = JSON.parse(stdout) as { status: number; multi: string[]; poller: string[] };
    expect(seen.status).toBe(200);
    // Calls from inside perform() and close() see those callers' stores.
    expect(seen.multi).toContain('creator');
    expect(seen.multi.filter((store) => !['creator', 'caller', 'closer'].includes(store))).toEqual([]);
    expect(seen.poller).toEqual(['creator']);
  }, 30_000);

  it('on the default Multi, a later request does not see the store of the first one', async () => {
    const first: Array<[string, string | undefined]> = [];
    const second: Array<[string, string | undefined]> = [];
    const e1 = tracedEasy(first);
    const e2 = tracedEasy(second);
    try {
      await als.run('first', () => e1.perform());
      await als.run('second', () => e2.perform());
      expect(first.length).toBeGreaterThan(0);
      expect(second.length).toBeGreaterThan(0);
      expect(first.filter(([, store]) => store !== 'first')).toEqual([]);
      expect(second.filter(([, store]) => store !== 'second')).toEqual([]);
    } finally {
      e1.close();
      e2.close();
    }
  });

  it('a callback that throws leaves its store behind neither for the other transfers nor for later callbacks', async () => {
    // Throwing callbacks run between the callbacks of other transfers in the
    // same socket event or timer run: each must still see its own store, and
    // code that runs after them in no store must see none.
    const multi = new Multi();
    const wrong: string[] = [];
    const check = (where: string, id: string | undefined) => {
      const store = als.getStore();
      if (store !== id) wrong.push(`${where}: ${String(store)} instead of ${String(id)}`);
    };
    // Which callback throws, per transfer of a round.
    const plan = ['sockopt', 'write', '', '', 'sockopt', 'write', '', ''];
    const easies: Easy[] = [];
    try {
      for (let round = 0; round < 3; round++) {
        const outcomes = await Promise.all(
          plan.map((fails, i) => {
            const id = `T${round}.${i}`;
            const easy = new Easy()
              .setopt('URL', `${http.url}/bytes?n=100000`)
              .setopt('FORBID_REUSE', true)
              .setopt('SOCKOPTFUNCTION', () => {
                check('sockopt', id);
                if (fails === 'sockopt') throw new Error(`sockopt of ${id}`);
                return 0;
              })
              .setopt('WRITEFUNCTION', (chunk: Buffer) => {
                check('write', id);
                if (fails === 'write') throw new Error(`write of ${id}`);
                return chunk.length;
              });
            easies.push(easy);
            return als.run(id, () =>
              multi.perform(easy).then(
                (t) => {
                  check('continuation', id);
                  return t.status;
                },
                (err: CurlError) => {
                  check('continuation', id);
                  return (err.cause as Error).message;
                },
              ),
            );
          }),
        );
        expect(outcomes).toEqual(plan.map((fails, i) => (fails ? `${fails} of T${round}.${i}` : 200)));
        await new Promise<void>((resolve) => setImmediate(() => resolve(check('setImmediate', undefined))));
        await new Promise<void>((resolve) => setTimeout(() => resolve(check('setTimeout', undefined)), 1));
      }
      expect(wrong).toEqual([]);
    } finally {
      for (const easy of easies) easy.close();
      multi.close();
    }
  });
});

describe('re-entrancy', () => {
  it('perform() inside a WRITEFUNCTION is refused; the throw becomes the cause; no crash', async () => {
    const other = new Easy().setopt('URL', `${http.url}/hello`);
    let captured: unknown;
    let calls = 0;
    const easy = new Easy().setopt('URL', `${http.url}/bytes?n=1000`).setopt('WRITEFUNCTION', (chunk: Buffer) => {
      calls += 1;
      try {
        void other.perform();
      } catch (err) {
        captured = err;
        throw err;
      }
      return chunk.length;
    });
    try {
      const err = await rejection(easy.perform());
      expect(calls).toBe(1);
      expect(captured).toBeInstanceOf(Error);
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLE_WRITE_ERROR');
      expect((err as CurlError).cause).toBe(captured);
      // Neither handle is stuck: both work afterwards.
      const t = await other.perform();
      expect(t.body.toString()).toBe('hello world\n');
      easy.setopt('WRITEFUNCTION', null);
      expect((await easy.perform()).body.equals(expectedBytes(1000))).toBe(true);
    } finally {
      easy.close();
      other.close();
    }
  });

  it('perform() of its own Easy inside its WRITEFUNCTION is refused too', async () => {
    let captured: unknown;
    const easy = new Easy().setopt('URL', `${http.url}/hello`);
    easy.setopt('WRITEFUNCTION', () => {
      try {
        void easy.perform();
      } catch (err) {
        captured = err;
        throw err;
      }
    });
    try {
      const err = await rejection(easy.perform());
      expect(captured).toBeInstanceOf(Error);
      expect((err as CurlError).code).toBe('CURLE_WRITE_ERROR');
      expect((err as CurlError).cause).toBe(captured);
    } finally {
      easy.close();
    }
  });

  it('perform() on another Multi inside an XFERINFOFUNCTION is refused and becomes the cause', async () => {
    const multi = new Multi();
    const other = new Easy().setopt('URL', `${http.url}/hello`);
    let captured: unknown;
    const easy = new Easy().setopt('URL', `${http.url}/slow?ms=200`).setopt('XFERINFOFUNCTION', () => {
      try {
        void multi.perform(other);
      } catch (err) {
        captured = err;
        throw err;
      }
      return 0;
    });
    try {
      const err = await rejection(easy.perform());
      expect(captured).toBeInstanceOf(Error);
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLE_ABORTED_BY_CALLBACK');
      expect((err as CurlError).cause).toBe(captured);
      expect((await multi.perform(other)).status).toBe(200);
    } finally {
      easy.close();
      other.close();
      multi.close();
    }
  });

  it('AbortController.abort() inside a callback is deferred and rejects with AbortError', async () => {
    const controller = new AbortController();
    const easy = new Easy().setopt('URL', `${http.url}/drip?chunks=50&interval=20`).setopt('WRITEFUNCTION', () => {
      controller.abort();
    });
    try {
      const err = await rejection(easy.perform({ signal: controller.signal }));
      expect((err as Error).name).toBe('AbortError');
      easy.setopt('WRITEFUNCTION', null).setopt('URL', `${http.url}/hello`);
      expect((await easy.perform()).status).toBe(200);
    } finally {
      easy.close();
    }
  });

  it('close() of its own Easy inside a WRITEFUNCTION is deferred and rejects with AbortError', async () => {
    const easy = new Easy().setopt('URL', `${http.url}/drip?chunks=50&interval=20`);
    easy.setopt('WRITEFUNCTION', () => {
      easy.close();
    });
    const err = await rejection(easy.perform());
    expect((err as Error).name).toBe('AbortError');
    expect(easy.closed).toBe(true);
    // The process is healthy.
    const again = new Easy().setopt('URL', `${http.url}/hello`);
    try {
      expect((await again.perform()).status).toBe(200);
    } finally {
      again.close();
    }
  });
});

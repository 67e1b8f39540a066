/**
 * perform's `into`: the body is written into memory the caller lends, and
 * `transfer.body` is a Buffer over its first bytes. A body that does not fit
 * gets a Buffer of its own (from the start when its Content-Length is too
 * large, midway otherwise). The binding looks the memory up again before every
 * write, so JS detaching it mid-transfer fails that transfer instead of letting
 * the binding write into freed memory; two transfers in flight may not share
 * bytes of it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CurlError, Easy, Multi } from '../dist/index.js';
import { native } from '../dist/native.js';
import { closedPort, rejection, waitFor } from './helpers/wait';

let server: http.Server;
let base: string;
let sequence = 0;
// Responses of /stall that have sent their first half, waiting for the rest.
const stalled: Array<() => void> = [];

/** Different bytes for every response, so a stale byte cannot pass for a right one. */
function bodyFor(size: number, seq: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) out[i] = (i * 7 + seq * 13 + 1) & 0xff;
  return out;
}

beforeAll(async () => {
  // /sized/N: N bytes with a Content-Length; /chunked/N: the same, chunked;
  // /stall/N: a Content-Length, the first half, then the rest when released;
  // /stallend/N: chunked, the whole body, then its end when released.
  server = http.createServer((req, res) => {
    const [, kind, n] = (req.url ?? '').split('/');
    const size = Number(n);
    const seq = ++sequence;
    const body = bodyFor(size, seq);
    res.setHeader('x-seq', String(seq));
    if (kind === 'chunked') {
      res.writeHead(200);
      for (let at = 0; at < size; at += 10_000) res.write(body.subarray(at, at + 10_000));
      res.end();
    } else if (kind === 'stallend') {
      res.writeHead(200);
      res.write(body);
      stalled.push(() => res.end());
    } else if (kind === 'stall') {
      res.writeHead(200, { 'content-length': size });
      res.write(body.subarray(0, size / 2));
      stalled.push(() => res.end(body.subarray(size / 2)));
    } else {
      res.writeHead(200, { 'content-length': size });
      res.end(body);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function expectedBody(headers: Array<[string, string]>, size: number): Buffer {
  const field = headers.find(([name]) => name.toLowerCase() === 'x-seq');
  return bodyFor(size, Number(field?.[1]));
}

function get(multi: Multi, path: string, into?: Uint8Array): Promise<Awaited<ReturnType<Multi['perform']>>> {
  const easy = new Easy().setopt('URL', base + path);
  return multi.perform(easy, { into }).finally(() => easy.close());
}

/** Detaches the ArrayBuffer under `view` (what transferring it to a worker does). */
function detach(view: Uint8Array): void {
  structuredClone(view.buffer, { transfer: [view.buffer as ArrayBuffer] });
}

describe('perform({ into })', () => {
  it.each([
    ['with a Content-Length', 'sized'],
    ['chunked', 'chunked'],
  ])('writes a body that fits (%s) into the memory given, and nothing past it', async (_, kind) => {
    const multi = new Multi();
    try {
      for (const size of [0, 100, 20_000, 300_000]) {
        const into = new Uint8Array(300_000 + 16).fill(0xee);
        const t = await get(multi, `/${kind}/${size}`, into);
        expect(Buffer.isBuffer(t.body)).toBe(true);
        expect(t.body.buffer).toBe(into.buffer);
        expect(t.body.byteOffset).toBe(into.byteOffset);
        expect(t.body.length).toBe(size);
        expect(t.body.equals(expectedBody(t.headers, size))).toBe(true);
        expect(into.subarray(size).every((b) => b === 0xee)).toBe(true);
      }
    } finally {
      multi.close();
    }
  });

  it('reuses the same memory for transfer after transfer, with no pooled body memory', async () => {
    const multi = new Multi();
    try {
      const into = Buffer.alloc(1024 * 1024);
      const before = native.bodyPoolStats();
      const seen = new Set<number>();
      for (let i = 0; i < 20; i++) {
        const t = await get(multi, '/sized/262144', into);
        expect(t.body.buffer).toBe(into.buffer);
        expect(t.body.equals(expectedBody(t.headers, 262144))).toBe(true);
        seen.add(t.body[0] as number);
      }
      expect(seen.size).toBeGreaterThan(1);  // each response differs, and each landed in `into`
      const after = native.bodyPoolStats();
      expect(after.mapped).toBe(before.mapped);
      expect(after.liveBytes).toBe(before.liveBytes);
    } finally {
      multi.close();
    }
  });

  it('writes into a view at an offset of a larger buffer, and into shared memory', async () => {
    const multi = new Multi();
    try {
      const slab = new ArrayBuffer(200_000);
      const view = new Uint8Array(slab, 50_000, 100_000);
      const t = await get(multi, '/sized/70000', view);
      expect(t.body.buffer).toBe(slab);
      expect(t.body.byteOffset).toBe(50_000);
      expect(t.body.equals(expectedBody(t.headers, 70000))).toBe(true);

      const shared = new Uint8Array(new SharedArrayBuffer(100_000));
      const s = await get(multi, '/chunked/90000', shared);
      expect(s.body.buffer).toBe(shared.buffer);
      expect(s.body.equals(expectedBody(s.headers, 90000))).toBe(true);
    } finally {
      multi.close();
    }
  });

  it.each([
    ['announced too large: a Buffer of its own from the start', 'sized'],
    ['outgrows it midway (chunked): the bytes so far move to a Buffer of its own', 'chunked'],
  ])('gives a body that does not fit a Buffer of its own (%s)', async (_, kind) => {
    const multi = new Multi();
    try {
      for (const size of [50_000, 400_000]) {
        const into = new Uint8Array(30_000);
        const t = await get(multi, `/${kind}/${size}`, into);
        expect(t.body.buffer).not.toBe(into.buffer);
        expect(t.body.length).toBe(size);
        expect(t.body.equals(expectedBody(t.headers, size))).toBe(true);
      }
      // An empty `into`: every body goes elsewhere.
      const t = await get(multi, '/sized/10', new Uint8Array(0));
      expect(t.body.equals(expectedBody(t.headers, 10))).toBe(true);
    } finally {
      multi.close();
    }
  });

  it('still applies maxBodyBytes', async () => {
    const multi = new Multi();
    const easy = new Easy().setopt('URL', `${base}/chunked/50000`);
    try {
      const err = await rejection(multi.perform(easy, { into: new Uint8Array(100_000), maxBodyBytes: 20_000 }));
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLE_FILESIZE_EXCEEDED');
    } finally {
      easy.close();
      multi.close();
    }
  });

  it('refuses memory that shares bytes with the into of a transfer in flight, and takes it back when that ends', async () => {
    const multi = new Multi();
    const first = new Easy().setopt('URL', `${base}/stall/40000`);
    const second = new Easy().setopt('URL', `${base}/sized/1000`);
    try {
      const slab = new Uint8Array(100_000);
      const running = multi.perform(first, { into: slab.subarray(0, 50_000) });
      expect(() => multi.perform(second, { into: slab.subarray(49_999, 60_000) })).toThrow(TypeError);
      expect(() => multi.perform(second, { into: slab })).toThrow(/shares bytes/);
      // Refused without a trace: the Easy is not left in a transfer.
      const beside = await multi.perform(second, { into: slab.subarray(50_000) });
      expect(beside.body.byteOffset).toBe(50_000);
      expect(beside.body.equals(expectedBody(beside.headers, 1000))).toBe(true);

      await waitFor(() => stalled.length > 0, 3000, 'the stalled response');
      stalled.shift()?.();
      const t = await running;
      expect(t.body.equals(expectedBody(t.headers, 40000))).toBe(true);
      // Ended: the same bytes may be used again.
      const again = await multi.perform(second, { into: slab });
      expect(again.body.buffer).toBe(slab.buffer);
    } finally {
      first.close();
      second.close();
      multi.close();
    }
  });

  it('takes the memory back after a failed and an aborted transfer', async () => {
    const multi = new Multi();
    const into = new Uint8Array(10_000);
    const easy = new Easy();
    try {
      easy.setopt('URL', `http://127.0.0.1:${await closedPort()}/`);
      expect(await rejection(multi.perform(easy, { into }))).toBeInstanceOf(CurlError);

      easy.setopt('URL', `${base}/stall/8000`);
      const controller = new AbortController();
      const aborted = multi.perform(easy, { into, signal: controller.signal });
      await waitFor(() => stalled.length > 0, 3000, 'the stalled response');
      controller.abort();
      await rejection(aborted);
      stalled.shift()?.();

      easy.setopt('URL', `${base}/sized/5000`);
      const t = await multi.perform(easy, { into });
      expect(t.body.buffer).toBe(into.buffer);
      expect(t.body.equals(expectedBody(t.headers, 5000))).toBe(true);
    } finally {
      easy.close();
      multi.close();
    }
  });

  it('fails the transfer, and writes nothing more, when JS detaches the memory midway', async () => {
    const multi = new Multi();
    const easy = new Easy().setopt('URL', `${base}/stall/200000`);
    try {
      const into = new Uint8Array(300_000);
      const running = multi.perform(easy, { into });
      await waitFor(() => stalled.length > 0, 3000, 'the stalled response');
      // Let the first half arrive (and be written), then take the memory away.
      await waitFor(() => into.subarray(0, 1000).some((b) => b !== 0), 3000, 'the first bytes');
      detach(into);
      expect(into.byteLength).toBe(0);
      stalled.shift()?.();
      const err = await rejection(running);
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLE_WRITE_ERROR');
      expect(String((err as Error).cause)).toMatch(/detached or shrunk while the body was being written/);

      // The Easy and the Multi go on as before.
      const t = await multi.perform(easy.setopt('URL', `${base}/sized/3000`), { into: new Uint8Array(4000) });
      expect(t.body.equals(expectedBody(t.headers, 3000))).toBe(true);
    } finally {
      easy.close();
      multi.close();
    }
  });

  it('fails the transfer when JS detaches the memory after the last byte was written, before the end', async () => {
    const multi = new Multi();
    const easy = new Easy().setopt('URL', `${base}/stallend/30000`);
    try {
      const into = new Uint8Array(40_000);
      const running = multi.perform(easy, { into });
      await waitFor(() => stalled.length > 0, 3000, 'the stalled response');
      await waitFor(() => into.subarray(29_000, 30_000).some((b) => b !== 0), 3000, 'the last bytes');
      detach(into);
      stalled.shift()?.();
      const err = await rejection(running);
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLE_WRITE_ERROR');
      expect(String((err as Error).cause)).toMatch(/detached or shrunk after the body was written/);
    } finally {
      easy.close();
      multi.close();
    }
  });

  it('gives the body a Buffer of its own when the memory was detached before any byte came', async () => {
    const multi = new Multi();
    const easy = new Easy().setopt('URL', `${base}/stall/20000`);
    try {
      const into = new Uint8Array(50_000);
      const running = multi.perform(easy, { into });
      detach(into);
      await waitFor(() => stalled.length > 0, 3000, 'the stalled response');
      stalled.shift()?.();
      const t = await running;
      expect(t.body.buffer).not.toBe(into.buffer);
      expect(t.body.equals(expectedBody(t.headers, 20000))).toBe(true);
    } finally {
      easy.close();
      multi.close();
    }
  });

  it('refuses what is not a Uint8Array', () => {
    const multi = new Multi();
    const easy = new Easy().setopt('URL', `${base}/sized/10`);
    try {
      for (const bad of ['text', new Uint16Array(8), new ArrayBuffer(8), new DataView(new ArrayBuffer(8)), null]) {
        expect(() => multi.perform(easy, { into: bad as unknown as Uint8Array })).toThrow(TypeError);
      }
      // Shrunk and grown back between two writes, it would keep its address
      // and length with the cut-off bytes zeroed: nothing could notice.
      const ResizableBuffer = ArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => ArrayBuffer;
      const resizable = new Uint8Array(new ResizableBuffer(1024, { maxByteLength: 4096 }));
      expect(() => multi.perform(easy, { into: resizable })).toThrow(/resizable/);
      expect(easy.closed).toBe(false);
    } finally {
      easy.close();
      multi.close();
    }
  });
});

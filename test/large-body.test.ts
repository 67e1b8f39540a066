/**
 * How a body reaches JS: up to 16 KiB through a scratch buffer TS copies from,
 * 64 KiB to 64 MiB with a Content-Length straight into the Buffer JS receives,
 * anything else grown natively and copied once. Every body must be a Buffer of
 * its own that later transfers never touch. The tests also cover every way the
 * bytes can differ from the announced length: exact, more (a decoded gzip
 * body), fewer (gzip of incompressible data, a connection cut short), and a
 * limit below the announced length. No path may hand JS unwritten bytes.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CurlError, Easy, Multi } from '../dist/index.js';
import { native } from '../dist/native.js';
import { rejection } from './helpers/wait';

// Compresses to more than 64 KiB (so it is written directly) and decodes to far more.
const compressible = Buffer.concat([randomBytes(100_000), Buffer.alloc(1_000_000, 'x')]);
const incompressible = randomBytes(200_000);
const plain = randomBytes(256 * 1024);

let server: http.Server;
let base: string;
let sequence = 0;
let stalled: http.ServerResponse[] = [];

/** The body /size/N sends as the response numbered `seq`: different bytes for every response. */
function sizedBody(size: number, seq: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) out[i] = (i * 7 + seq * 13) & 0xff;
  return out;
}

function seqOf(headers: Array<[string, string]>): number {
  const field = headers.find(([name]) => name.toLowerCase() === 'x-seq');
  if (!field) throw new Error('no x-seq header');
  return Number(field[1]);
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const send = (body: Buffer, headers: Record<string, string | number> = {}): void => {
      res.writeHead(200, { 'content-length': body.length, ...headers });
      res.end(body);
    };
    const sized = /^\/size\/(\d+)$/.exec(req.url ?? '');
    if (sized) {
      const seq = ++sequence;
      send(sizedBody(Number(sized[1]), seq), { 'x-seq': seq });
      return;
    }
    const stall = /^\/stall\/(\d+)$/.exec(req.url ?? '');
    if (stall) {
      // Announces N bytes, sends 1000, then waits until the test ends.
      res.writeHead(200, { 'content-length': Number(stall[1]) });
      res.write(plain.subarray(0, 1000));
      stalled.push(res);
      return;
    }
    switch (req.url) {
      case '/plain':
        send(plain);
        return;
      case '/gzip-grows':
        send(gzipSync(compressible), { 'content-encoding': 'gzip' });
        return;
      case '/gzip-shrinks':
        send(gzipSync(incompressible, { level: 0 }), { 'content-encoding': 'gzip' });
        return;
      case '/cut-short':
        // Announces 200000 bytes, sends half, then drops the connection.
        res.writeHead(200, { 'content-length': 200_000 });
        res.write(plain.subarray(0, 100_000), () => setTimeout(() => req.socket.destroy(), 20));
        return;
      default:
        res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of stalled) res.destroy();
  stalled = [];
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function expectStandalone(body: Buffer): void {
  // The Buffer owns exactly its bytes: nothing else is reachable through .buffer.
  expect(body.byteOffset).toBe(0);
  expect(body.buffer.byteLength).toBe(body.length);
}

describe('bodies of every size', () => {
  // 16 KiB: the largest body handed over through the scratch buffer; 64 KiB: the smallest written in place.
  const sizes = [0, 1, 12, 16 * 1024 - 1, 16 * 1024, 16 * 1024 + 1, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1];

  it.each(sizes)('a %i-byte body arrives intact in a Buffer of its own, untouched by later transfers', async (size) => {
    const easy = new Easy().setopt('URL', `${base}/size/${size}`);
    try {
      const transfers = [];
      for (let i = 0; i < 3; i++) transfers.push(await easy.perform());
      const seqs = transfers.map((t) => seqOf(t.headers));
      expect(new Set(seqs).size).toBe(3);  // three different responses
      for (const [i, t] of transfers.entries()) {
        // Checked after all three: an earlier body must not share memory with a later one.
        expect(t.body.length).toBe(size);
        expect(t.body.equals(sizedBody(size, seqs[i] as number))).toBe(true);
        expectStandalone(t.body);
      }
    } finally {
      easy.close();
    }
  });

  it('concurrent small bodies of different sizes each get their own bytes', async () => {
    const multi = new Multi();
    const wanted = Array.from({ length: 40 }, (_, i) => 100 + i * 400);
    const easies = wanted.map((n) => new Easy().setopt('URL', `${base}/size/${n}`));
    try {
      const results = await Promise.all(easies.map((e) => multi.perform(e)));
      results.forEach((t, i) => expect(t.body.equals(sizedBody(wanted[i] as number, seqOf(t.headers)))).toBe(true));
    } finally {
      for (const e of easies) e.close();
      multi.close();
    }
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('where a large body is written', () => {
  // A body of 64 KiB or more is written into pooled native memory that becomes
  // the Buffer JS gets (liveBytes); one grown natively is in neither count
  // below until it is copied out. V8 learns of neither before the transfer
  // ends (`external`), so a body in flight sets off no GC.
  async function growthWhileStalled(announced: number): Promise<{ pooled: number; buffers: number; external: number }> {
    const easy = new Easy().setopt('URL', `${base}/stall/${announced}`);
    const before = stalled.length;
    const pooledBefore = native.bodyPoolStats().liveBytes;
    const buffersBefore = process.memoryUsage().arrayBuffers;
    const externalBefore = process.memoryUsage().external;
    const pending = rejection(easy.perform());
    try {
      await waitFor(() => stalled.length === before + 1);
      await new Promise((resolve) => setTimeout(resolve, 50));  // the first 1000 bytes arrive
      return {
        pooled: native.bodyPoolStats().liveBytes - pooledBefore,
        buffers: process.memoryUsage().arrayBuffers - buffersBefore,
        external: process.memoryUsage().external - externalBefore,
      };
    } finally {
      easy.close();
      expect((await pending as Error).name).toBe('AbortError');
    }
  }

  it('up to 64 MiB announced: straight into the Buffer JS receives', async () => {
    const growth = await growthWhileStalled(48 * 1024 * 1024);
    // Earlier tests' bodies may be freed meanwhile, hence the margin.
    expect(growth.pooled).toBeGreaterThanOrEqual(40 * 1024 * 1024);
    expect(growth.pooled).toBeLessThanOrEqual(56 * 1024 * 1024);  // a block is at most 1/8 over
    expect(growth.external).toBeLessThan(8 * 1024 * 1024);
  });

  it('over 64 MiB announced: natively, not as an up-front Buffer', async () => {
    const growth = await growthWhileStalled(100 * 1024 * 1024);
    // Nothing taken from the pool (a GC meanwhile may free earlier bodies).
    expect(growth.pooled).toBeLessThanOrEqual(0);
    expect(growth.buffers).toBeLessThan(16 * 1024 * 1024);
  });
});

describe('large bodies', () => {
  it('a 256 KiB body with Content-Length arrives intact in a Buffer of exactly its size', async () => {
    const easy = new Easy().setopt('URL', `${base}/plain`);
    try {
      for (let i = 0; i < 3; i++) {
        const t = await easy.perform();
        expect(t.body.equals(plain)).toBe(true);
        expectStandalone(t.body);
      }
    } finally {
      easy.close();
    }
  });

  it('a gzip body that decodes to more than its Content-Length arrives whole', async () => {
    const easy = new Easy().setopt('URL', `${base}/gzip-grows`).setopt('ACCEPT_ENCODING', '');
    try {
      const t = await easy.perform();
      const announced = gzipSync(compressible).length;
      expect(announced).toBeGreaterThanOrEqual(64 * 1024);
      expect(announced).toBeLessThan(compressible.length);
      expect(t.body.equals(compressible)).toBe(true);
      expectStandalone(t.body);
    } finally {
      easy.close();
    }
  });

  it('a gzip body that decodes to less than its Content-Length has no stray bytes', async () => {
    const easy = new Easy().setopt('URL', `${base}/gzip-shrinks`).setopt('ACCEPT_ENCODING', '');
    try {
      const t = await easy.perform();
      expect(gzipSync(incompressible, { level: 0 }).length).toBeGreaterThan(incompressible.length);
      expect(t.body.equals(incompressible)).toBe(true);
      expectStandalone(t.body);
    } finally {
      easy.close();
    }
  });

  it('a connection cut short fails with CURLE_PARTIAL_FILE, and the handle works again', async () => {
    const easy = new Easy().setopt('URL', `${base}/cut-short`);
    try {
      const err = await rejection(easy.perform());
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLE_PARTIAL_FILE');
      easy.setopt('URL', `${base}/plain`);
      const t = await easy.perform();
      expect(t.body.equals(plain)).toBe(true);
    } finally {
      easy.close();
    }
  });

  it('maxBodyBytes below the Content-Length fails with CURLE_FILESIZE_EXCEEDED', async () => {
    const easy = new Easy().setopt('URL', `${base}/plain`);
    try {
      const err = await rejection(easy.perform({ maxBodyBytes: plain.length - 1 }));
      expect((err as CurlError).code).toBe('CURLE_FILESIZE_EXCEEDED');
      const t = await easy.perform({ maxBodyBytes: plain.length });
      expect(t.body.equals(plain)).toBe(true);
    } finally {
      easy.close();
    }
  });

  it('30 concurrent large bodies on one Multi each arrive intact; handles closed mid-body reject', async () => {
    const multi = new Multi();
    const easies = Array.from({ length: 30 }, () => new Easy().setopt('URL', `${base}/plain`));
    try {
      const results = await Promise.all(easies.map((e) => multi.perform(e)));
      for (const t of results) expect(t.body.equals(plain)).toBe(true);
      // Close some handles while their bodies are half written.
      const before = stalled.length;
      const cut = easies.slice(0, 10).map((e) => e.setopt('URL', `${base}/stall/300000`));
      const pending = cut.map((e) => rejection(multi.perform(e)));
      await waitFor(() => stalled.length === before + 10);
      await new Promise((resolve) => setTimeout(resolve, 50));  // the first 1000 bytes arrive
      for (const e of cut) e.close();
      for (const err of await Promise.all(pending)) expect((err as Error).name).toBe('AbortError');
    } finally {
      for (const e of easies) e.close();
      multi.close();
    }
  });
});

describe('a body the process cannot get memory for', () => {
  it('fails its transfer with CURLE_OUT_OF_MEMORY and the process lives on (address space limited by prlimit)', async () => {
    // Four bodies of an announced 64 MiB, in a process allowed about 40 MB
    // more address space than it has: the memory for some cannot be had.
    const child = spawn(process.execPath, [path.join(__dirname, 'children', 'out-of-memory-body.mjs'), String(64 * 1024 * 1024), '4'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const ready = /READY (\d+)\n/.exec(stdout);
      if (ready && !child.stdin.writableEnded) {
        const limit = (Number(ready[1]) + 40_000) * 1024;
        const set = spawnSync('prlimit', ['--pid', String(child.pid), `--as=${limit}`], { encoding: 'utf8' });
        if (set.status !== 0) stderr += `prlimit failed: ${set.stderr}`;
        child.stdin.end('go\n');
      }
    });
    const code = await exited;
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const results = JSON.parse(stdout.split('\n').filter(Boolean).at(-1) as string) as string[];
    expect(results).toHaveLength(4);
    // The ten bytes that came are a partial file; a body with no memory is out of memory.
    expect(results).toContain('CURLE_OUT_OF_MEMORY');
    expect(results.filter((r) => r !== 'CURLE_OUT_OF_MEMORY' && r !== 'CURLE_PARTIAL_FILE')).toEqual([]);
  }, 30_000);
});

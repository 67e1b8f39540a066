/**
 * Large bodies (64 KiB and more with a Content-Length) are written straight
 * into the Buffer that JS receives. These tests cover every way the bytes can
 * differ from the announced length: exact, more (a decoded gzip body), fewer
 * (gzip of incompressible data, a connection cut short), and a limit below
 * the announced length. No path may hand JS a Buffer with unwritten bytes.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CurlError, Easy, Multi } from '../dist/index.js';
import { rejection } from './helpers/wait';

// Compresses to more than 64 KiB (so it is written directly) and decodes to far more.
const compressible = Buffer.concat([randomBytes(100_000), Buffer.alloc(1_000_000, 'x')]);
const incompressible = randomBytes(200_000);
const plain = randomBytes(256 * 1024);

let server: http.Server;
let base: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const send = (body: Buffer, headers: Record<string, string | number> = {}): void => {
      res.writeHead(200, { 'content-length': body.length, ...headers });
      res.end(body);
    };
    const sized = /^\/size\/(\d+)$/.exec(req.url ?? '');
    if (sized) {
      send(plain.subarray(0, Number(sized[1])));
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

  it.each(sizes)('a %i-byte body arrives intact in a Buffer of its own', async (size) => {
    const easy = new Easy().setopt('URL', `${base}/size/${size}`);
    try {
      const first = await easy.perform();
      const second = await easy.perform();
      for (const t of [first, second]) {
        expect(t.body.length).toBe(size);
        expect(t.body.equals(plain.subarray(0, size))).toBe(true);
        expectStandalone(t.body);
      }
      // The first body is not overwritten by the second transfer.
      expect(first.body.equals(plain.subarray(0, size))).toBe(true);
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
      results.forEach((t, i) => expect(t.body.equals(plain.subarray(0, wanted[i]))).toBe(true));
    } finally {
      for (const e of easies) e.close();
      multi.close();
    }
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
      const cut = easies.slice(0, 10).map((e) => e.setopt('URL', `${base}/cut-short`));
      const pending = cut.map((e) => rejection(multi.perform(e)));
      await new Promise((resolve) => setTimeout(resolve, 5));
      for (const e of cut) e.close();
      for (const err of await Promise.all(pending)) expect(err).toBeInstanceOf(Error);
    } finally {
      for (const e of easies) e.close();
      multi.close();
    }
  });
});

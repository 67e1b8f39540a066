/**
 * The receive buffer: from libcurl 8.7 on (one buffer per multi handle) every
 * Easy starts with BUFFERSIZE 64 KiB, libcurl's own default (16 KiB) before.
 * The size a recv() was given shows in the DEBUGFUNCTION's CURLINFO_DATA_IN
 * chunks, which libcurl reports per read; a 4 MiB body sent at once from
 * loopback fills at least one read whole.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CURLINFO_DATA_IN, Easy, Multi, libcurlVersion } from '../dist/index.js';

const [major, minor] = libcurlVersion.split('.').map(Number) as [number, number];
const DEFAULT_SIZE = major > 8 || (major === 8 && minor >= 7) ? 65536 : 16384;
const body = Buffer.alloc(4 << 20, 0x61);

let server: http.Server;
let url: string;

beforeAll(async () => {
  server = http.createServer((req, res) => res.end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** The largest single read of the transfer, and the body length received. */
async function largestRead(easy: Easy, multi?: Multi): Promise<{ largest: number; received: number }> {
  let largest = 0;
  easy.setopt('URL', url).setopt('VERBOSE', 1).setopt('DEBUGFUNCTION', (type, data) => {
    if (type === CURLINFO_DATA_IN) largest = Math.max(largest, data.length);
  });
  const transfer = multi ? await multi.perform(easy) : await easy.perform();
  return { largest, received: transfer.body.length };
}

describe(`receive buffer size (libcurl ${libcurlVersion}: default ${DEFAULT_SIZE})`, () => {
  it('a new Easy reads with the default size', async () => {
    expect(await largestRead(new Easy())).toEqual({ largest: DEFAULT_SIZE, received: body.length });
  });

  it("the user's BUFFERSIZE wins, also in a duphandle copy; reset() and null return to the default", async () => {
    const easy = new Easy().setopt('BUFFERSIZE', 16384 + 1024);
    expect((await largestRead(easy)).largest).toBe(16384 + 1024);
    expect((await largestRead(easy.duphandle())).largest).toBe(16384 + 1024);
    easy.reset();
    expect((await largestRead(easy)).largest).toBe(DEFAULT_SIZE);
    const restored = new Easy().setopt('BUFFERSIZE', 20000).setopt('BUFFERSIZE', null);
    expect((await largestRead(restored)).largest).toBe(DEFAULT_SIZE);
  });

  it('concurrent transfers on one Multi each read with their own setting', async () => {
    const multi = new Multi();
    try {
      const [byDefault, small] = await Promise.all([
        largestRead(new Easy(), multi),
        largestRead(new Easy().setopt('BUFFERSIZE', 8192), multi),
      ]);
      expect(byDefault).toEqual({ largest: DEFAULT_SIZE, received: body.length });
      expect(small).toEqual({ largest: 8192, received: body.length });
    } finally {
      multi.close();
    }
  });
});

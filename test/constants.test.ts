import { describe, expect, it } from 'vitest';
import * as pkg from '../dist/index.js';
import { Easy } from '../dist/index.js';
import { startHttpServer } from './helpers/servers';

describe('exported constants', () => {
  it('socket-callback and socket constants have the platform values', () => {
    expect(pkg.CURL_SOCKET_BAD).toBe(-1);
    expect(pkg.CURL_SOCKOPT_ALREADY_CONNECTED).toBe(2);
    expect(pkg.AF_INET).toBe(2);
    expect(pkg.AF_INET6).toBe(10);
    expect(pkg.AF_UNIX).toBe(1);
    expect(pkg.SOL_SOCKET).toBe(1);
    expect(pkg.IPPROTO_TCP).toBe(6);
    expect(pkg.TCP_NODELAY).toBe(1);
    expect(pkg.SO_MARK).toBe(36);
    expect(pkg.TCP_USER_TIMEOUT).toBe(18);
  });

  it('option-value constants come from the linked libcurl headers', () => {
    expect(pkg.CURLPROTO_HTTP).toBe(1);
    expect(pkg.CURLPROTO_HTTPS).toBe(2);
    expect(pkg.CURL_IPRESOLVE_V4).toBe(1);
    expect(pkg.CURL_IPRESOLVE_V6).toBe(2);
    expect(pkg.CURL_HTTP_VERSION_1_1).toBe(2);
    expect(pkg.CURLAUTH_ANY).toBe(-17);
  });

  it('an option-value constant newer than the running libcurl is undefined (on 7.88, CURLFOLLOW_OBEYCODE would mean "follow")', () => {
    // Versions from curl's symbols-in-versions; the suite runs on 8.14 and 7.88.
    const [major, minor, patch] = pkg.libcurlVersion.split('.').map(Number) as [number, number, number];
    const running = (major << 16) | (minor << 8) | patch;
    const introduced: Array<[keyof typeof pkg, number]> = [
      ['CURLFOLLOW_OBEYCODE', 0x080d00],
      ['CURLPROXY_HTTPS2', 0x080100],
      ['CURLSSLOPT_EARLYDATA', 0x080b00],
      ['CURL_HTTP_VERSION_3ONLY', 0x075800],
      ['CURL_WRITEFUNC_ERROR', 0x075700],
    ];
    for (const [name, since] of introduced) {
      if (running >= since) expect(pkg[name], name).toBeTypeOf('number');
      else expect(pkg[name], name).toBeUndefined();
    }
  });

  it('the ESM entry exports the same values as the CommonJS one', async () => {
    const esm = await import('../dist/index.mjs');
    expect(esm.CURL_IPRESOLVE_V4).toBe(pkg.CURL_IPRESOLVE_V4);
    expect(esm.Easy).toBe(pkg.Easy);
  });

  it('an enum constant works as an option value: IPRESOLVE V4 cannot reach an IPv6-only server', async () => {
    const server = await startHttpServer({ host: '::1' });
    try {
      const port = server.port;
      const v6 = new Easy().setopt('URL', `http://localhost:${port}/hello`).setopt('IPRESOLVE', pkg.CURL_IPRESOLVE_V6 as number);
      expect((await v6.perform()).status).toBe(200);
      const v4 = new Easy().setopt('URL', `http://localhost:${port}/hello`).setopt('IPRESOLVE', pkg.CURL_IPRESOLVE_V4 as number);
      await expect(v4.perform()).rejects.toMatchObject({ code: 'CURLE_COULDNT_CONNECT' });
      v6.close();
      v4.close();
    } finally {
      await server.close();
    }
  });
});

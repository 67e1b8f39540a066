// Crash-proofing: every option name with values of every type, and every
// info name, must either work or throw TypeError / RangeError / CurlError,
// and the handle must stay usable.
import { describe, expect, it } from 'vitest';
import { CurlError, Easy, Multi, Poller, createSocket, closeSocket, getSocketOption, setSocketOption, adoptSocket } from '../dist/index.js';
import { INFO_TABLE, MULTI_OPTION_TABLE, OPTION_TABLE } from '../dist/generated/options.js';
import { startHttpServer } from './helpers/servers';

// A path that cannot be written, so options that name files have no side effect.
const NOWHERE = '/nonexistent/curl-sockets-robustness';
const VALUES: readonly unknown[] = [1, -1, 2 ** 40, 0.5, NaN, true, NOWHERE, '', ['a: b'], Buffer.from('x'), {}, () => 0, 10n, null, undefined];

function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (error) {
    if (error instanceof CurlError) return 'CurlError';
    if (error instanceof RangeError) return 'RangeError';
    if (error instanceof TypeError) return 'TypeError';
    return `unexpected ${String(error)}`;
  }
}

describe('every option and info, every value type', () => {
  it('setopt never crashes and only throws TypeError, RangeError or CurlError', () => {
    const unexpected: string[] = [];
    const setopt = (easy: Easy, name: string, value: unknown): void => {
      // The generated types forbid most of these; the point is what happens at run time.
      (easy.setopt as (name: string, value: unknown) => Easy)(name, value);
    };
    for (const [name] of OPTION_TABLE) {
      const easy = new Easy();
      for (const value of VALUES) {
        const result = outcome(() => setopt(easy, name, value));
        if (result.startsWith('unexpected')) unexpected.push(`${name} = ${String(value)}: ${result}`);
      }
      easy.close();
    }
    expect(unexpected).toEqual([]);
  });

  it('a handle that went through every bad value still performs', async () => {
    const server = await startHttpServer();
    try {
      const easy = new Easy();
      for (const value of VALUES) outcome(() => (easy.setopt as (n: string, v: unknown) => Easy)('TIMEOUT_MS', value));
      for (const value of VALUES) outcome(() => (easy.setopt as (n: string, v: unknown) => Easy)('HTTPHEADER', value));
      easy.setopt('TIMEOUT_MS', null).setopt('HTTPHEADER', null).setopt('URL', `${server.url}/hello`);
      expect((await easy.perform()).body.toString()).toBe('hello world\n');

      const kinds = new Map<string, string>();
      for (const [name] of INFO_TABLE) {
        let result: string;
        try {
          const value = (easy.getinfo as (name: string) => unknown)(name);
          result = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
        } catch (error) {
          result = error instanceof TypeError ? 'TypeError' : error instanceof CurlError ? 'CurlError' : `unexpected ${String(error)}`;
        }
        kinds.set(name, result);
      }
      for (const [name, result] of kinds) expect([name, result.startsWith('unexpected')]).toEqual([name, false]);
      expect(kinds.get('RESPONSE_CODE')).toBe('number');
      expect(kinds.get('EFFECTIVE_URL')).toBe('string');
      expect(kinds.get('CERTINFO')).toBe('TypeError');
      easy.close();
    } finally {
      await server.close();
    }
  });
});

describe('multi options and socket helpers, every value type', () => {
  it('Multi.setopt, assign and socketAction never crash', () => {
    const unexpected: string[] = [];
    const multi = new Multi();
    for (const [name] of MULTI_OPTION_TABLE) {
      for (const value of VALUES) {
        const result = outcome(() => (multi.setopt as (n: string, v: unknown) => Multi)(name, value));
        if (result.startsWith('unexpected')) unexpected.push(`${name} = ${String(value)}: ${result}`);
      }
    }
    for (const value of VALUES) {
      for (const fn of [
        () => multi.assign(value as number, value),
        () => multi.socketAction(value as number, 0),
        () => multi.socketAction(-1, value as number),
      ]) {
        const result = outcome(fn);
        if (result.startsWith('unexpected')) unexpected.push(`multi call with ${String(value)}: ${result}`);
      }
    }
    multi.close();
    expect(unexpected).toEqual([]);
  });

  it('names of Object.prototype members are unknown options, not lookups that go astray', () => {
    const easy = new Easy();
    const multi = new Multi();
    for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      expect(() => (easy.setopt as (n: string, v: unknown) => Easy)(name, 1)).toThrow(/Unknown option/);
      expect(() => (multi.setopt as (n: string, v: unknown) => Multi)(name, 1)).toThrow(/Unknown multi option/);
      expect(() => (easy.getinfo as (n: string) => unknown)(name)).toThrow(/Unknown info/);
    }
    easy.close();
    multi.close();
  });

  it('socket helpers throw errors, never crash, on any argument', () => {
    const unexpected: string[] = [];
    const check = (what: string, fn: () => unknown): void => {
      try {
        fn();
      } catch (error) {
        if (!(error instanceof Error)) unexpected.push(`${what}: threw a non-Error`);
      }
    };
    for (const value of VALUES) {
      const n = value as number;
      check('createSocket', () => createSocket(value as never));
      check('closeSocket', () => closeSocket(n));
      check('setSocketOption', () => setSocketOption(n, n, n, value as number));
      check('getSocketOption', () => getSocketOption(n, n, n));
      check('adoptSocket', () => adoptSocket(value as never));
      check('Poller', () => new Poller(n).close());
    }
    expect(unexpected).toEqual([]);
  });
});

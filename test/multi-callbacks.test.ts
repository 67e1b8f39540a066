/**
 * CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION in the default 'uv' mode:
 * the binding polls on its own and the user's callbacks observe. These suites
 * check what the callbacks are told (sequence of `what`, identity of `easy`,
 * `socketp` after assign(), `clientp`), what a failing callback does to the
 * Multi (every transfer rejects with CURLM_ABORTED_BY_CALLBACK), and that the
 * socket bookkeeping holds under load and under fd number reuse.
 */
import { spawn } from 'node:child_process';
import * as dns from 'node:dns/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CurlError,
  CURL_POLL_IN,
  CURL_POLL_INOUT,
  CURL_POLL_OUT,
  CURL_POLL_REMOVE,
  CURL_SOCKET_TIMEOUT,
  Easy,
  IPPROTO_TCP,
  Multi,
  TCP_NODELAY,
  createSocket,
  getSocketOption,
} from '../dist/index.js';
import { listFds, openFdCount } from './helpers/fds';
import { startHttpServer, type TestServer } from './helpers/servers';
import { waitUntil as waitFor } from './helpers/wait';

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

interface SocketCall {
  easy: Easy | null;
  fd: number;
  what: number;
  clientp: unknown;
  socketp: unknown;
}

/** One watch of one fd: from its first announcement to its REMOVE. */
interface Episode {
  fd: number;
  /** Whether the fd was a TCP socket when first announced (resolver fds are not). */
  tcp: boolean;
  calls: SocketCall[];
  removed: boolean;
}

/** True if fd is a TCP socket right now (TCP_NODELAY is readable only on TCP sockets). */
function isTcpSocket(fd: number): boolean {
  try {
    getSocketOption(fd, IPPROTO_TCP as number, TCP_NODELAY as number);
    return true;
  } catch {
    return false;
  }
}

/**
 * Records SOCKETFUNCTION calls and splits them into episodes per fd. An
 * announcement for an fd that is already watched is a change of `what` in the
 * same episode; a REMOVE for an fd that is not watched is a protocol error.
 */
class SocketLog {
  readonly calls: SocketCall[] = [];
  readonly episodes: Episode[] = [];
  readonly watched = new Map<number, Episode>();
  readonly errors: string[] = [];

  record(call: SocketCall): Episode | undefined {
    this.calls.push(call);
    const episode = this.watched.get(call.fd);
    if (call.what === CURL_POLL_REMOVE) {
      if (episode === undefined) {
        this.errors.push(`REMOVE of fd ${call.fd}, which is not watched`);
        return undefined;
      }
      episode.calls.push(call);
      episode.removed = true;
      this.watched.delete(call.fd);
      return episode;
    }
    if (episode !== undefined) {
      episode.calls.push(call);
      return episode;
    }
    const fresh: Episode = { fd: call.fd, tcp: isTcpSocket(call.fd), calls: [call], removed: false };
    this.episodes.push(fresh);
    this.watched.set(call.fd, fresh);
    return fresh;
  }
}

/** fds open now that were not open (with the same readlink target) in `baseline`. */
function newFdsSince(baseline: Map<number, string>): string[] {
  const out: string[] = [];
  for (const [fd, target] of listFds()) {
    if (baseline.get(fd) !== target) out.push(`${fd} -> ${target}`);
  }
  return out;
}

function makeEasy(url: string): Easy {
  return new Easy().setopt('URL', url);
}

// ---------------------------------------------------------------------------

/** A host name that getaddrinfo maps to 127.0.0.1 only (from /etc/hosts), or undefined. */
async function findResolverHost(): Promise<string | undefined> {
  const name = os.hostname();
  if (name === '' || name === 'localhost' || name.endsWith('.localhost')) return undefined;
  try {
    const addresses = await dns.lookup(name, { all: true });
    const v4 = addresses.filter((a) => a.family === 4);
    if (v4.length === 0 || !addresses.every((a) => a.address === '127.0.0.1' || a.address === '::1')) return undefined;
    return name;
  } catch {
    return undefined;
  }
}

const resolverHost = await findResolverHost();

let server: TestServer;

beforeAll(async () => {
  server = await startHttpServer();
});

afterAll(async () => {
  await server?.close();
});

describe('SOCKETFUNCTION in uv mode: what it is told', () => {
  it('for one slow transfer the TCP fd is announced for connect (OUT/INOUT), then IN, then REMOVEd once; easy is the Easy passed to perform', async () => {
    const multi = new Multi({ driver: 'uv' });
    const log = new SocketLog();
    multi.setopt('SOCKETFUNCTION', (easy, fd, what, clientp, socketp) => {
      log.record({ easy, fd, what, clientp, socketp });
    });
    const easy = makeEasy(`${server.url}/slow?ms=300`);
    try {
      const transfer = await multi.perform(easy);
      expect(transfer.status).toBe(200);
      expect(transfer.body.toString()).toBe('slow');
    } finally {
      multi.close();
    }

    expect(log.errors).toEqual([]);
    expect(log.watched.size).toBe(0);
    // An IP-literal URL needs no resolver: the only fd is the connection's.
    expect(log.episodes).toHaveLength(1);
    const [episode] = log.episodes as [Episode];
    expect(episode.tcp).toBe(true);
    expect(episode.removed).toBe(true);

    const whats = episode.calls.map((c) => c.what);
    expect([CURL_POLL_OUT, CURL_POLL_INOUT]).toContain(whats[0]);
    const firstIn = whats.indexOf(CURL_POLL_IN);
    expect(firstIn).toBeGreaterThan(0);
    expect(whats[whats.length - 1]).toBe(CURL_POLL_REMOVE);
    expect(whats.filter((w) => w === CURL_POLL_REMOVE)).toHaveLength(1);
    // Every value of what is one of libcurl's CURL_POLL_* constants.
    for (const w of whats) expect([CURL_POLL_IN, CURL_POLL_OUT, CURL_POLL_INOUT, CURL_POLL_REMOVE]).toContain(w);

    // `easy` is the very object handed to perform, on every call.
    for (const call of log.calls) expect(call.easy).toBe(easy);
    easy.close();
  });

  it('with a host name (localhost) every announced fd, resolver fds included, is REMOVEd exactly once, always with the same Easy', async () => {
    const multi = new Multi({ driver: 'uv' });
    const log = new SocketLog();
    multi.setopt('SOCKETFUNCTION', (easy, fd, what, clientp, socketp) => {
      log.record({ easy, fd, what, clientp, socketp });
    });
    const easy = makeEasy(`http://localhost:${server.port}/slow?ms=200`);
    try {
      const transfer = await multi.perform(easy);
      expect(transfer.status).toBe(200);
      expect(transfer.body.toString()).toBe('slow');
    } finally {
      multi.close();
    }

    expect(log.errors).toEqual([]);
    expect(log.watched.size).toBe(0);
    expect(log.episodes.length).toBeGreaterThanOrEqual(1);
    for (const episode of log.episodes) {
      expect(episode.removed).toBe(true);
      expect(episode.calls.filter((c) => c.what === CURL_POLL_REMOVE)).toHaveLength(1);
      expect(episode.calls[episode.calls.length - 1]?.what).toBe(CURL_POLL_REMOVE);
    }
    // The connection that carried the response was a TCP socket announced here.
    expect(log.episodes.some((e) => e.tcp && e.calls.some((c) => c.what === CURL_POLL_IN))).toBe(true);
    for (const call of log.calls) expect(call.easy).toBe(easy);
    easy.close();
  });

  // libcurl answers 'localhost' itself, without its resolver. A name from
  // /etc/hosts goes through the threaded resolver, whose wakeup fd (an eventfd
  // or socketpair) is announced too. The machine's own host name is used when
  // it maps to loopback only; otherwise this test is skipped.
  it.runIf(resolverHost !== undefined)(
    'a host name resolved by the threaded resolver: its fd is announced with the same Easy, REMOVEd once, and never goes through OPENSOCKETFUNCTION',
    async () => {
      const multi = new Multi({ driver: 'uv' });
      const log = new SocketLog();
      let opensockets = 0;
      multi.setopt('SOCKETFUNCTION', (easy, fd, what, clientp, socketp) => {
        log.record({ easy, fd, what, clientp, socketp });
      });
      const easy = new Easy();
      try {
        easy.setopt('URL', `http://${resolverHost}:${server.port}/slow?ms=100`);
        easy.setopt('OPENSOCKETFUNCTION', (_purpose, address) => {
          opensockets++;
          return createSocket(address);
        });
        const transfer = await multi.perform(easy);
        expect(transfer.status).toBe(200);
        expect(transfer.body.toString()).toBe('slow');
      } finally {
        multi.close();
        easy.close();
      }
      expect(log.errors).toEqual([]);
      expect(log.watched.size).toBe(0);
      const resolverEpisodes = log.episodes.filter((e) => !e.tcp);
      const tcpEpisodes = log.episodes.filter((e) => e.tcp);
      // A resolve that finishes before libcurl first asks what to wait on announces no
      // fd (it happens on a loaded machine), so the resolver checks below apply when one
      // was announced; the rest holds either way.
      expect(tcpEpisodes.length).toBeGreaterThanOrEqual(1);
      // Only the TCP sockets came from OPENSOCKETFUNCTION.
      expect(opensockets).toBe(tcpEpisodes.length);
      for (const episode of log.episodes) {
        expect(episode.removed).toBe(true);
        expect(episode.calls.filter((c) => c.what === CURL_POLL_REMOVE)).toHaveLength(1);
        expect(episode.calls[episode.calls.length - 1]?.what).toBe(CURL_POLL_REMOVE);
      }
      // The resolver is waited on for reading, and done with before the connection starts.
      for (const episode of resolverEpisodes) expect(episode.calls[0]?.what).toBe(CURL_POLL_IN);
      if (resolverEpisodes.length > 0) {
        const firstTcp = log.calls.indexOf(tcpEpisodes[0]!.calls[0]!);
        const lastResolver = log.calls.indexOf(resolverEpisodes[resolverEpisodes.length - 1]!.calls.at(-1)!);
        expect(lastResolver).toBeLessThan(firstTcp);
      }
      for (const call of log.calls) expect(call.easy).toBe(easy);
    },
  );

  it('a value stored with assign(fd, value) on the first call comes back as socketp (same object) on every later call for that fd, REMOVE included; before assign it is undefined', async () => {
    const multi = new Multi({ driver: 'uv' });
    const log = new SocketLog();
    const assigned = new Map<Episode, object>();
    const assignErrors: unknown[] = [];
    multi.setopt('SOCKETFUNCTION', (easy, fd, what, clientp, socketp) => {
      const episode = log.record({ easy, fd, what, clientp, socketp });
      if (episode !== undefined && episode.calls.length === 1) {
        const value = { fd, episode: log.episodes.length };
        try {
          multi.assign(fd, value);
          assigned.set(episode, value);
        } catch (err) {
          assignErrors.push(err);
        }
      }
    });
    // localhost: a resolver fd (if the threaded resolver uses one) and the TCP
    // connection may get the same fd number one after the other; the value of
    // the first episode must not leak into the second.
    const easies = [makeEasy(`http://localhost:${server.port}/slow?ms=200`), makeEasy(`${server.url}/drip?chunks=4&interval=40`)];
    try {
      const transfers = await Promise.all(easies.map((e) => multi.perform(e)));
      expect(transfers.map((t) => t.status)).toEqual([200, 200]);
      expect(transfers[1]?.body.length).toBe(4 * 1024);
    } finally {
      multi.close();
      for (const e of easies) e.close();
    }

    expect(assignErrors).toEqual([]);
    expect(log.errors).toEqual([]);
    expect(log.episodes.length).toBeGreaterThanOrEqual(2);
    for (const episode of log.episodes) {
      const value = assigned.get(episode);
      expect(value).toBeDefined();
      const [first, ...later] = episode.calls;
      expect(first?.socketp).toBeUndefined();
      expect(later.length).toBeGreaterThanOrEqual(1); // at least the REMOVE
      for (const call of later) expect(call.socketp).toBe(value);
      expect(later[later.length - 1]?.what).toBe(CURL_POLL_REMOVE);
    }
  });

  it('assign() outside the callback, while the fd is watched, replaces the value seen by the next calls', async () => {
    const multi = new Multi({ driver: 'uv' });
    const log = new SocketLog();
    const replacement = { replaced: true };
    let replacedAt = -1;
    multi.setopt('SOCKETFUNCTION', (easy, fd, what, clientp, socketp) => {
      const episode = log.record({ easy, fd, what, clientp, socketp });
      if (episode !== undefined && episode.calls.length === 1) multi.assign(fd, { original: fd });
    });
    const easy = makeEasy(`${server.url}/slow?ms=400`);
    const pending = multi.perform(easy);
    try {
      // Once the connection is announced (connect or wait for the response), swap the value from a timer.
      expect(await waitFor(() => log.watched.size === 1, 2000)).toBe(true);
      const [fd] = [...log.watched.keys()] as [number];
      replacedAt = log.calls.length;
      multi.assign(fd, replacement);
      const transfer = await pending;
      expect(transfer.body.toString()).toBe('slow');
    } finally {
      multi.close();
      easy.close();
    }
    const afterwards = log.calls.slice(replacedAt);
    expect(afterwards.length).toBeGreaterThanOrEqual(1);
    expect(afterwards[afterwards.length - 1]?.what).toBe(CURL_POLL_REMOVE);
    for (const call of afterwards) expect(call.socketp).toBe(replacement);
  });

  it('SOCKETDATA and TIMERDATA arrive as clientp (same objects)', async () => {
    const multi = new Multi({ driver: 'uv' });
    const socketData = { name: 'socket data' };
    const timerData = { name: 'timer data' };
    const socketClientps: unknown[] = [];
    const timerClientps: unknown[] = [];
    multi.setopt('SOCKETDATA', socketData);
    multi.setopt('TIMERDATA', timerData);
    multi.setopt('SOCKETFUNCTION', (_easy, _fd, _what, clientp) => {
      socketClientps.push(clientp);
    });
    multi.setopt('TIMERFUNCTION', (_ms, clientp) => {
      timerClientps.push(clientp);
    });
    const easy = makeEasy(`${server.url}/slow?ms=100`);
    try {
      const transfer = await multi.perform(easy);
      expect(transfer.status).toBe(200);
    } finally {
      multi.close();
      easy.close();
    }
    expect(socketClientps.length).toBeGreaterThanOrEqual(2);
    expect(timerClientps.length).toBeGreaterThanOrEqual(1);
    for (const c of socketClientps) expect(c).toBe(socketData);
    for (const c of timerClientps) expect(c).toBe(timerData);
  });

  it('TIMERFUNCTION gets integers >= -1, and its first call happens inside perform() (from curl_multi_add_handle)', async () => {
    const multi = new Multi({ driver: 'uv' });
    const values: number[] = [];
    multi.setopt('TIMERFUNCTION', (ms) => {
      values.push(ms);
    });
    const easies = [
      makeEasy(`http://localhost:${server.port}/slow?ms=150`),
      makeEasy(`${server.url}/drip?chunks=3&interval=30`),
      makeEasy(`${server.url}/hello`),
    ];
    try {
      const promises = easies.map((e) => multi.perform(e));
      // Synchronously after perform(): libcurl asked for a timeout while adding the handle.
      expect(values.length).toBeGreaterThanOrEqual(1);
      expect(values[0]).toBeGreaterThanOrEqual(0);
      const transfers = await Promise.all(promises);
      expect(transfers.map((t) => t.status)).toEqual([200, 200, 200]);
    } finally {
      multi.close();
      for (const e of easies) e.close();
    }
    expect(values.length).toBeGreaterThanOrEqual(2);
    for (const v of values) {
      expect(typeof v).toBe('number');
      expect(Number.isInteger(v)).toBe(true);
      expect(v).toBeGreaterThanOrEqual(-1);
    }
  });

  it('socketAction() called inside SOCKETFUNCTION or TIMERFUNCTION throws CURLM_RECURSIVE_API_CALL and the transfer still completes', async () => {
    const multi = new Multi({ driver: 'uv' });
    const caught: unknown[] = [];
    let attempts = 0;
    multi.setopt('SOCKETFUNCTION', (_easy, fd) => {
      attempts++;
      try {
        multi.socketAction(fd, 0);
      } catch (err) {
        caught.push(err);
      }
    });
    multi.setopt('TIMERFUNCTION', () => {
      attempts++;
      try {
        multi.socketAction(CURL_SOCKET_TIMEOUT, 0);
      } catch (err) {
        caught.push(err);
      }
    });
    const easy = makeEasy(`${server.url}/hello`);
    try {
      const transfer = await multi.perform(easy);
      expect(transfer.body.toString()).toBe('hello world\n');
    } finally {
      multi.close();
      easy.close();
    }
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(caught).toHaveLength(attempts);
    for (const err of caught) {
      expect(err).toBeInstanceOf(CurlError);
      expect((err as CurlError).code).toBe('CURLM_RECURSIVE_API_CALL');
    }
  });
});

describe('calls into the binding from inside the callbacks (libcurl is never re-entered)', () => {
  it('perform() inside SOCKETFUNCTION throws CURLM_RECURSIVE_API_CALL; the refused Easy performs normally afterwards', async () => {
    const multi = new Multi({ driver: 'uv' });
    const extra = makeEasy(`${server.url}/hello`);
    const caught: unknown[] = [];
    let tried = false;
    multi.setopt('SOCKETFUNCTION', () => {
      if (tried) return;
      tried = true;
      try {
        void multi.perform(extra);
        caught.push('no error');
      } catch (err) {
        caught.push(err);
      }
    });
    const easy = makeEasy(`${server.url}/hello`);
    try {
      const transfer = await multi.perform(easy);
      expect(transfer.body.toString()).toBe('hello world\n');
      expect(caught).toHaveLength(1);
      expect(caught[0]).toBeInstanceOf(CurlError);
      expect((caught[0] as CurlError).code).toBe('CURLM_RECURSIVE_API_CALL');
      expect(multi.running).toBe(0);
      // Not left marked as in a transfer.
      const again = await multi.perform(extra);
      expect(again.body.toString()).toBe('hello world\n');
    } finally {
      multi.close();
      easy.close();
      extra.close();
    }
  });

  it('close() inside SOCKETFUNCTION is deferred until libcurl returns: every transfer rejects with an AbortError, the Multi is closed', async () => {
    const multi = new Multi({ driver: 'uv' });
    let closedInside = false;
    multi.setopt('SOCKETFUNCTION', (_easy, _fd, what) => {
      if (!closedInside && what === CURL_POLL_IN) {
        closedInside = true;
        multi.close();
      }
    });
    const easies = [0, 1, 2].map(() => makeEasy(`${server.url}/slow?ms=5000`));
    try {
      const results = await Promise.allSettled(easies.map((e) => multi.perform(e)));
      expect(closedInside).toBe(true);
      for (const result of results) {
        expect(result.status).toBe('rejected');
        expect(((result as PromiseRejectedResult).reason as Error).name).toBe('AbortError');
      }
      expect(multi.running).toBe(0);
      expect(() => multi.perform(easies[0]!)).toThrow(Error);
    } finally {
      multi.close();
      for (const e of easies) e.close();
    }
  });

  it('close() inside the TIMERFUNCTION call made by perform() rejects that transfer with an AbortError', async () => {
    const multi = new Multi({ driver: 'uv' });
    let calls = 0;
    multi.setopt('TIMERFUNCTION', () => {
      calls++;
      multi.close();
    });
    const easy = makeEasy(`${server.url}/hello`);
    try {
      const promise = multi.perform(easy);
      expect(calls).toBeGreaterThanOrEqual(1);
      await expect(promise).rejects.toMatchObject({ name: 'AbortError' });
      expect(multi.running).toBe(0);
      // The Easy is free again: another Multi runs it.
      const other = new Multi();
      try {
        const transfer = await other.perform(easy);
        expect(transfer.body.toString()).toBe('hello world\n');
      } finally {
        other.close();
      }
    } finally {
      multi.close();
      easy.close();
    }
  });
});

// ---------------------------------------------------------------------------
// A failing callback aborts the Multi
// ---------------------------------------------------------------------------

type CallbackKind = 'SOCKETFUNCTION' | 'TIMERFUNCTION';
type Failure = 'returns -1' | 'throws';
/**
 * 'first': the callback fails from its very first call on (for TIMERFUNCTION
 * that call is inside perform()). 'later': it behaves until a later call
 * (SOCKETFUNCTION: the first CURL_POLL_IN; TIMERFUNCTION: the first call after
 * the three perform() calls returned, from a uv event) and fails from then on.
 * 'once-later': like 'later' but it fails on that one call only.
 */
type When = 'first' | 'later' | 'once-later';

interface AbortOutcome {
  results: PromiseSettledResult<unknown>[];
  thrown: Error;
  failures: number;
  runningAfter: number;
}

async function runAbortingMulti(kind: CallbackKind, failure: Failure, when: When): Promise<AbortOutcome> {
  const multi = new Multi({ driver: 'uv' });
  const thrown = new Error(`${kind} ${failure} (${when})`);
  let failing = when === 'first';
  let failures = 0;
  const fail = (): number => {
    failures++;
    if (when === 'once-later') failing = false;
    if (failure === 'throws') throw thrown;
    return -1;
  };
  multi.setopt('SOCKETFUNCTION', (_easy, _fd, what) => {
    if (kind !== 'SOCKETFUNCTION') return 0;
    if (when !== 'first' && what === CURL_POLL_IN && failures === 0) failing = true;
    return failing ? fail() : 0;
  });
  multi.setopt('TIMERFUNCTION', () => {
    if (kind !== 'TIMERFUNCTION') return 0;
    return failing ? fail() : 0;
  });
  // Slow enough that nothing finishes on its own before the abort.
  const easies = [0, 1, 2].map(() => makeEasy(`${server.url}/slow?ms=5000`));
  try {
    const promises = easies.map((e) => multi.perform(e));
    if (kind === 'TIMERFUNCTION' && when !== 'first') failing = true;
    const results = await Promise.allSettled(promises);
    const runningAfter = multi.running;
    return { results, thrown, failures, runningAfter };
  } finally {
    multi.close();
    for (const e of easies) e.close();
  }
}

describe('a failing SOCKETFUNCTION or TIMERFUNCTION aborts the Multi', () => {
  const cases: Array<[CallbackKind, Failure, When]> = [];
  for (const kind of ['SOCKETFUNCTION', 'TIMERFUNCTION'] as const) {
    for (const failure of ['returns -1', 'throws'] as const) {
      for (const when of ['first', 'later'] as const) cases.push([kind, failure, when]);
    }
  }
  cases.push(['SOCKETFUNCTION', 'returns -1', 'once-later'], ['TIMERFUNCTION', 'throws', 'once-later']);

  it.each(cases)(
    '%s that %s on the %s call: all 3 transfers reject with CURLM_ABORTED_BY_CALLBACK, a new Multi works, fds return to baseline',
    async (kind, failure, when) => {
      // Let connections of earlier tests finish closing before taking the baseline.
      expect(await waitFor(() => server.openConnections() === 0)).toBe(true);
      const baseline = listFds();

      const outcome = await runAbortingMulti(kind, failure, when);
      expect(outcome.failures).toBeGreaterThanOrEqual(1);
      if (when === 'once-later') expect(outcome.failures).toBe(1);
      expect(outcome.runningAfter).toBe(0);
      expect(outcome.results).toHaveLength(3);
      for (const result of outcome.results) {
        expect(result.status).toBe('rejected');
        const reason = (result as PromiseRejectedResult).reason as CurlError;
        expect(reason).toBeInstanceOf(CurlError);
        expect(reason.code).toBe('CURLM_ABORTED_BY_CALLBACK');
        if (failure === 'throws') expect(reason.cause).toBe(outcome.thrown);
        else expect(reason.cause).toBeUndefined();
      }

      // The process keeps working: a new Multi (and a reused Easy) transfer normally.
      const fresh = new Multi({ driver: 'uv' });
      const sockets = new SocketLog();
      fresh.setopt('SOCKETFUNCTION', (easy, fd, what, clientp, socketp) => {
        sockets.record({ easy, fd, what, clientp, socketp });
      });
      const easy = makeEasy(`${server.url}/hello`);
      try {
        const transfer = await fresh.perform(easy);
        expect(transfer.status).toBe(200);
        expect(transfer.body.toString()).toBe('hello world\n');
      } finally {
        fresh.close();
        easy.close();
      }
      expect(sockets.errors).toEqual([]);

      // Every fd opened on the way (libcurl's, the server's side) is closed
      // again: nothing is open now that was not open before (same number and target).
      await waitFor(() => server.openConnections() === 0 && newFdsSince(baseline).length === 0);
      expect(server.openConnections()).toBe(0);
      expect(newFdsSince(baseline)).toEqual([]);
      expect(openFdCount()).toBeLessThanOrEqual(baseline.size);
    },
  );

  // The REMOVE of a finished transfer's connection comes from inside the same
  // curl_multi_socket_action() call that finishes it, before its promise
  // settles: the transfer is still on the Multi, so the failure must reach it
  // (and must not vanish).
  it.each(['throws', 'returns -1'] as const)(
    'SOCKETFUNCTION that %s on the REMOVE of a finished transfer: that transfer and the two others in flight reject with CURLM_ABORTED_BY_CALLBACK',
    async (failure) => {
      const multi = new Multi({ driver: 'uv' });
      const thrown = new Error(`REMOVE ${failure}`);
      let failures = 0;
      multi.setopt('SOCKETFUNCTION', (_easy, _fd, what) => {
        if (what !== CURL_POLL_REMOVE || failures > 0) return 0;
        failures++;
        if (failure === 'throws') throw thrown;
        return -1;
      });
      const quick = makeEasy(`${server.url}/hello`);
      const slow = [0, 1].map(() => makeEasy(`${server.url}/slow?ms=5000`));
      try {
        const results = await Promise.allSettled([quick, ...slow].map((e) => multi.perform(e)));
        expect(failures).toBe(1);
        const summary = results.map((r) =>
          r.status === 'fulfilled'
            ? `fulfilled ${r.value.status}`
            : `rejected ${(r.reason as CurlError).code} cause ${(r.reason as CurlError).cause === (failure === 'throws' ? thrown : undefined)}`,
        );
        expect(summary).toEqual([
          'rejected CURLM_ABORTED_BY_CALLBACK cause true',
          'rejected CURLM_ABORTED_BY_CALLBACK cause true',
          'rejected CURLM_ABORTED_BY_CALLBACK cause true',
        ]);
      } finally {
        multi.close();
        for (const e of [quick, ...slow]) e.close();
      }
    },
  );

  it.each([
    ['SOCKETFUNCTION', 'a string', 'nope'],
    ['SOCKETFUNCTION', 'a non-integer number', 1.5],
    ['TIMERFUNCTION', 'a string', 'nope'],
    ['TIMERFUNCTION', 'a non-integer number', 1.5],
  ] as const)('%s returning %s aborts the Multi with a TypeError as the cause', async (kind, _label, value) => {
    const multi = new Multi({ driver: 'uv' });
    multi.setopt(kind, (() => value) as never);
    const easies = [0, 1].map(() => makeEasy(`${server.url}/slow?ms=5000`));
    try {
      const results = await Promise.allSettled(easies.map((e) => multi.perform(e)));
      for (const result of results) {
        expect(result.status).toBe('rejected');
        const reason = (result as PromiseRejectedResult).reason as CurlError;
        expect(reason).toBeInstanceOf(CurlError);
        expect(reason.code).toBe('CURLM_ABORTED_BY_CALLBACK');
        expect(reason.cause).toBeInstanceOf(TypeError);
      }
    } finally {
      multi.close();
      for (const e of easies) e.close();
    }
  });

  it('a Multi that aborted can be closed and its Easy handles perform again elsewhere', async () => {
    const multi = new Multi({ driver: 'uv' });
    multi.setopt('TIMERFUNCTION', () => -1);
    const easy = makeEasy(`${server.url}/hello`);
    await expect(multi.perform(easy)).rejects.toMatchObject({ code: 'CURLM_ABORTED_BY_CALLBACK' });
    multi.close();
    multi.close(); // idempotent
    const other = new Multi();
    try {
      const transfer = await other.perform(easy);
      expect(transfer.body.toString()).toBe('hello world\n');
    } finally {
      other.close();
      easy.close();
    }
  });

  it('a child process that aborts Multis (-1 and throw, both callbacks) and closes nothing exits on its own with code 0', async () => {
    const script = path.join(__dirname, 'children', 'multi-abort-exit.mjs');
    const child = spawn(process.execPath, [script, server.url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let killed = false;
    const killer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, 10_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      child.on('exit', (c, s) => resolve([c, s]));
    });
    clearTimeout(killer);

    expect(killed, `the child did not exit by itself within 10 s; stdout: ${stdout} stderr: ${stderr}`).toBe(false);
    expect(signal).toBeNull();
    expect(code, `exit code ${code}; stdout: ${stdout} stderr: ${stderr}`).toBe(0);
    const report = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { cases: number; failures: string[] };
    expect(report.failures).toEqual([]);
    expect(report.cases).toBe(8);
  });
});

// ---------------------------------------------------------------------------
// Bookkeeping under load and under fd number reuse
// ---------------------------------------------------------------------------

describe('socket bookkeeping under load', () => {
  it('5,000 transfers at concurrency 200 through one Multi: every announced fd is REMOVEd once between announcements, none stays watched', async () => {
    const TOTAL = 5000;
    const CONCURRENCY = 200;
    const multi = new Multi({ driver: 'uv' });
    const watched = new Map<number, number>();
    const protocolErrors: string[] = [];
    const inFlight = new Set<Easy>();
    let announcements = 0;
    let removes = 0;
    let foreignEasy = 0;
    multi.setopt('SOCKETFUNCTION', (easy, fd, what) => {
      if (easy !== null && !inFlight.has(easy)) foreignEasy++;
      if (what === CURL_POLL_REMOVE) {
        if (!watched.has(fd)) protocolErrors.push(`REMOVE of unwatched fd ${fd}`);
        watched.delete(fd);
        removes++;
      } else {
        if (!watched.has(fd)) announcements++;
        watched.set(fd, what);
      }
    });

    let started = 0;
    let succeeded = 0;
    const failures: string[] = [];
    const worker = async (): Promise<void> => {
      while (started < TOTAL) {
        started++;
        const easy = makeEasy(`${server.url}/hello`);
        inFlight.add(easy);
        try {
          const transfer = await multi.perform(easy);
          if (transfer.status === 200 && transfer.body.toString() === 'hello world\n') succeeded++;
          else failures.push(`status ${transfer.status} body ${JSON.stringify(transfer.body.toString())}`);
        } catch (err) {
          failures.push(String(err));
        } finally {
          inFlight.delete(easy);
          easy.close();
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      // Checked before close(): once every transfer is done, libcurl watches
      // nothing, not even the idle connections it keeps in the pool.
      expect(watched.size).toBe(0);
      expect(multi.running).toBe(0);
    } finally {
      multi.close();
    }
    expect(failures.slice(0, 5)).toEqual([]);
    expect(succeeded).toBe(TOTAL);
    expect(protocolErrors.slice(0, 5)).toEqual([]);
    expect(foreignEasy).toBe(0);
    expect(announcements).toBeGreaterThanOrEqual(CONCURRENCY);
    expect(removes).toBe(announcements);
    expect(watched.size).toBe(0);
  }, 60_000);

  it('FORBID_REUSE, sequential: the next connection gets the fd number just REMOVEd, and 200 transfers all succeed', async () => {
    const multi = new Multi({ driver: 'uv' });
    const log = new SocketLog();
    const freshSocketps: unknown[] = [];
    multi.setopt('SOCKETFUNCTION', (easy, fd, what, clientp, socketp) => {
      const episode = log.record({ easy, fd, what, clientp, socketp });
      if (episode !== undefined && episode.calls.length === 1) {
        freshSocketps.push(socketp);
        multi.assign(fd, { episode: log.episodes.length });
      }
    });
    expect(await waitFor(() => server.openConnections() === 0)).toBe(true);
    server.resetCounters();
    const N = 200;
    /** The one fd each transfer connected with (announced, then REMOVEd). */
    const fdOfTransfer: number[] = [];
    try {
      for (let i = 0; i < N; i++) {
        const before = log.episodes.length;
        const easy = makeEasy(`${server.url}/hello`).setopt('FORBID_REUSE', true);
        try {
          const transfer = await multi.perform(easy);
          expect(transfer.status).toBe(200);
          expect(transfer.body.toString()).toBe('hello world\n');
        } finally {
          easy.close();
        }
        const mine = log.episodes.slice(before);
        expect(mine).toHaveLength(1);
        expect(mine[0]?.removed).toBe(true);
        fdOfTransfer.push(mine[0]!.fd);
        // The server closes its side after libcurl did: wait, so that the
        // lowest free fd number is the one libcurl just closed.
        expect(await waitFor(() => server.openConnections() === 0)).toBe(true);
      }
    } finally {
      multi.close();
    }
    expect(server.connections).toBe(N);
    expect(log.errors).toEqual([]);
    expect(log.watched.size).toBe(0);
    // The assign() value of the previous connection on that fd never leaks into the next one.
    expect(freshSocketps).toHaveLength(N);
    for (const v of freshSocketps) expect(v).toBeUndefined();
    // The same fd number comes straight back.
    const mismatches: string[] = [];
    for (let i = 1; i < N; i++) {
      if (fdOfTransfer[i] !== fdOfTransfer[i - 1]) {
        mismatches.push(`transfer ${i}: fd ${fdOfTransfer[i]} after REMOVE of fd ${fdOfTransfer[i - 1]}`);
      }
    }
    expect(mismatches).toEqual([]);
  }, 60_000);

  it('FORBID_REUSE, back to back without waiting: 200 sequential transfers succeed while fd numbers are reused', async () => {
    const multi = new Multi({ driver: 'uv' });
    const log = new SocketLog();
    multi.setopt('SOCKETFUNCTION', (easy, fd, what, clientp, socketp) => {
      log.record({ easy, fd, what, clientp, socketp });
    });
    const N = 200;
    let ok = 0;
    try {
      for (let i = 0; i < N; i++) {
        const easy = makeEasy(`${server.url}/hello`).setopt('FORBID_REUSE', true);
        try {
          const transfer = await multi.perform(easy);
          if (transfer.body.toString() === 'hello world\n') ok++;
        } finally {
          easy.close();
        }
      }
    } finally {
      multi.close();
    }
    expect(ok).toBe(N);
    expect(log.errors).toEqual([]);
    expect(log.watched.size).toBe(0);
    expect(log.episodes).toHaveLength(N);
    const perFd = new Map<number, number>();
    for (const e of log.episodes) perFd.set(e.fd, (perFd.get(e.fd) ?? 0) + 1);
    // 200 connections over far fewer fd numbers: each number was handed out again after its REMOVE.
    expect(Math.max(...perFd.values())).toBeGreaterThanOrEqual(2);
    expect(perFd.size).toBeLessThan(N);
  }, 60_000);
});

/**
 * 'manual' Multi: the binding installs no driver, so the application drives
 * libcurl itself the way libcurl's multi-uv.c example does: SOCKETFUNCTION
 * starts and stops a Poller per fd, TIMERFUNCTION arms a setTimeout, and both
 * call back into libcurl with socketAction(). Only the public API is used.
 */
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CurlError,
  CURL_CSELECT_ERR,
  CURL_CSELECT_IN,
  CURL_CSELECT_OUT,
  CURL_POLL_IN,
  CURL_POLL_OUT,
  CURL_POLL_REMOVE,
  CURL_SOCKET_TIMEOUT,
  Easy,
  Multi,
  Poller,
  adoptSocket,
  closeSocket,
} from '../dist/index.js';
import { listFds } from './helpers/fds';
import { expectedBytes, startHttpServer, type TestServer } from './helpers/servers';
import { sleep } from './helpers/wait';

// ---------------------------------------------------------------------------
// A manual driver built from the public API only
// ---------------------------------------------------------------------------

interface ManualDriver {
  /** Pollers currently watching an fd (started, not yet closed). */
  readonly pollers: Map<number, Poller>;
  /** Errors thrown by socketAction() in a Poller or timer callback (none expected). */
  readonly actionErrors: unknown[];
  /** Calls to SOCKETFUNCTION / TIMERFUNCTION and socketAction() made. */
  readonly counts: { socket: number; timer: number; actions: number; timeouts: number };
  /** Problems seen in the callbacks' arguments. */
  readonly problems: string[];
  /** Stops the timer (pollers are stopped by REMOVE). */
  dispose(): void;
}

function pollBitsToSelect(what: number): number {
  let events = 0;
  if (what & CURL_POLL_IN) events |= CURL_CSELECT_IN;
  if (what & CURL_POLL_OUT) events |= CURL_CSELECT_OUT;
  return events;
}

/**
 * Installs SOCKETFUNCTION and TIMERFUNCTION on a 'manual' Multi. The Poller of
 * an fd is kept as its socketp (assign), so REMOVE finds it there.
 * `inside` runs first in every SOCKETFUNCTION / TIMERFUNCTION call.
 */
function installManualDriver(
  multi: Multi,
  inside?: { socket?: (fd: number, what: number) => void; timer?: (ms: number) => void },
): ManualDriver {
  const pollers = new Map<number, Poller>();
  const actionErrors: unknown[] = [];
  const problems: string[] = [];
  const counts = { socket: 0, timer: 0, actions: 0, timeouts: 0 };
  let timer: NodeJS.Timeout | undefined;

  const act = (fd: number, events: number): void => {
    counts.actions++;
    try {
      const running = multi.socketAction(fd, events);
      if (!Number.isInteger(running) || running < 0) problems.push(`socketAction returned ${running}`);
    } catch (err) {
      actionErrors.push(err);
    }
  };

  multi.setopt('SOCKETFUNCTION', (_easy, fd, what, _clientp, socketp) => {
    counts.socket++;
    inside?.socket?.(fd, what);
    if (what === CURL_POLL_REMOVE) {
      const poller = socketp as Poller | undefined;
      if (!(poller instanceof Poller)) {
        problems.push(`REMOVE of fd ${fd} without its Poller as socketp`);
        return 0;
      }
      if (pollers.get(fd) !== poller) problems.push(`REMOVE of fd ${fd}: socketp is not the Poller made for it`);
      poller.stop();
      poller.close();
      pollers.delete(fd);
      return 0;
    }
    let poller = socketp as Poller | undefined;
    if (poller === undefined) {
      if (pollers.has(fd)) problems.push(`fd ${fd} announced again without its socketp`);
      poller = new Poller(fd);
      pollers.set(fd, poller);
      multi.assign(fd, poller);
    }
    poller.start(pollBitsToSelect(what), (status, events) => {
      act(fd, status < 0 ? CURL_CSELECT_ERR : events);
    });
    return 0;
  });

  multi.setopt('TIMERFUNCTION', (ms) => {
    counts.timer++;
    inside?.timer?.(ms);
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (ms >= 0) {
      timer = setTimeout(() => {
        timer = undefined;
        counts.timeouts++;
        act(CURL_SOCKET_TIMEOUT, 0);
      }, ms);
    }
    return 0;
  });

  return {
    pollers,
    actionErrors,
    counts,
    problems,
    dispose(): void {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}

async function waitFor(predicate: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (predicate()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(10);
  }
}

function newFdsSince(baseline: Map<number, string>): string[] {
  const out: string[] = [];
  for (const [fd, target] of listFds()) {
    if (baseline.get(fd) !== target) out.push(`${fd} -> ${target}`);
  }
  return out;
}

let server: TestServer;

beforeAll(async () => {
  server = await startHttpServer();
});

afterAll(async () => {
  await server?.close();
});

// ---------------------------------------------------------------------------

describe("'manual' Multi driven with Poller, setTimeout and socketAction", () => {
  it('runs 200 transfers at concurrency 20 to completion, each body correct; every Poller is closed by REMOVE and no fd is left open', async () => {
    expect(await waitFor(() => server.openConnections() === 0)).toBe(true);
    const baseline = listFds();
    const multi = new Multi({ driver: 'manual' });
    const driver = installManualDriver(multi);
    const TOTAL = 200;
    const CONCURRENCY = 20;
    let next = 0;
    let correct = 0;
    const failures: string[] = [];
    const sizeOf = (i: number): number => 1 + ((i * 7919) % 200_000);
    const worker = async (): Promise<void> => {
      while (next < TOTAL) {
        const i = next++;
        const n = sizeOf(i);
        const easy = new Easy().setopt('URL', `${server.url}/bytes?n=${n}`);
        try {
          const transfer = await multi.perform(easy);
          if (transfer.status === 200 && transfer.body.equals(expectedBytes(n))) correct++;
          else failures.push(`#${i}: status ${transfer.status}, ${transfer.body.length} of ${n} bytes`);
        } catch (err) {
          failures.push(`#${i}: ${String(err)}`);
        } finally {
          easy.close();
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      expect(multi.running).toBe(0);
    } finally {
      multi.close();
      driver.dispose();
    }
    expect(failures.slice(0, 5)).toEqual([]);
    expect(correct).toBe(TOTAL);
    expect(driver.actionErrors).toEqual([]);
    expect(driver.problems).toEqual([]);
    // libcurl was driven by our code: fd events and timeouts both happened.
    expect(driver.counts.actions).toBeGreaterThan(TOTAL);
    expect(driver.counts.timeouts).toBeGreaterThanOrEqual(1);
    // Every fd libcurl announced was REMOVEd (so its Poller closed) by now.
    expect([...driver.pollers.keys()]).toEqual([]);
    await waitFor(() => server.openConnections() === 0 && newFdsSince(baseline).length === 0);
    expect(newFdsSince(baseline)).toEqual([]);
  }, 60_000);

  it('FORBID_REUSE, sequential: a new Poller on the fd number just REMOVEd works every time (200 transfers)', async () => {
    const multi = new Multi({ driver: 'manual' });
    const announced: number[] = [];
    const driver = installManualDriver(multi, {
      socket: (fd, what) => {
        if (what !== CURL_POLL_REMOVE && !driver.pollers.has(fd)) announced.push(fd);
      },
    });
    let ok = 0;
    try {
      for (let i = 0; i < 200; i++) {
        const easy = new Easy().setopt('URL', `${server.url}/hello`).setopt('FORBID_REUSE', true);
        try {
          const transfer = await multi.perform(easy);
          if (transfer.body.toString() === 'hello world\n') ok++;
        } finally {
          easy.close();
        }
        expect(driver.pollers.size).toBe(0);
      }
    } finally {
      multi.close();
      driver.dispose();
    }
    expect(ok).toBe(200);
    expect(driver.actionErrors).toEqual([]);
    expect(driver.problems).toEqual([]);
    expect(announced).toHaveLength(200);
    // fd numbers were handed out again (so Pollers were created on reused numbers).
    expect(new Set(announced).size).toBeLessThan(200);
  }, 60_000);

  it('close() with transfers in flight rejects them, REMOVEs every fd (so the Pollers close) and leaves no fd open', async () => {
    expect(await waitFor(() => server.openConnections() === 0)).toBe(true);
    const baseline = listFds();
    const multi = new Multi({ driver: 'manual' });
    const driver = installManualDriver(multi);
    const easies = [0, 1, 2].map(() => new Easy().setopt('URL', `${server.url}/slow?ms=5000`));
    const promises = easies.map((e) => multi.perform(e));
    const settled = Promise.allSettled(promises);
    try {
      // Wait until all three connections are being watched (request sent, waiting for the response).
      expect(await waitFor(() => driver.pollers.size === 3 && server.openConnections() === 3, 3000)).toBe(true);
    } finally {
      multi.close();
      driver.dispose();
    }
    const results = await settled;
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect(((r as PromiseRejectedResult).reason as Error).name).toBe('AbortError');
    }
    expect([...driver.pollers.keys()]).toEqual([]);
    expect(driver.problems).toEqual([]);
    for (const e of easies) e.close();
    await waitFor(() => server.openConnections() === 0 && newFdsSince(baseline).length === 0);
    expect(newFdsSince(baseline)).toEqual([]);
  });

  it.each(['SOCKETFUNCTION', 'TIMERFUNCTION'] as const)(
    'a %s that throws aborts a manual Multi too: every transfer rejects with the cause, REMOVE still closes every Poller',
    async (kind) => {
      const multi = new Multi({ driver: 'manual' });
      const thrown = new Error(`manual ${kind} throws`);
      let armed = false;
      let threw = 0;
      const driver = installManualDriver(multi, {
        socket: (_fd, what) => {
          if (kind === 'SOCKETFUNCTION' && what === CURL_POLL_IN && threw === 0) {
            threw++;
            throw thrown;
          }
        },
        timer: () => {
          if (kind === 'TIMERFUNCTION' && armed && threw === 0) {
            threw++;
            throw thrown;
          }
        },
      });
      const easies = [0, 1, 2].map(() => new Easy().setopt('URL', `${server.url}/slow?ms=5000`));
      try {
        const promises = easies.map((e) => multi.perform(e));
        armed = true; // TIMERFUNCTION: fail on its first call from a timeout or fd event
        const results = await Promise.allSettled(promises);
        expect(threw).toBe(1);
        for (const r of results) {
          expect(r.status).toBe('rejected');
          const reason = (r as PromiseRejectedResult).reason as CurlError;
          expect(reason).toBeInstanceOf(CurlError);
          expect(reason.code).toBe('CURLM_ABORTED_BY_CALLBACK');
          expect(reason.cause).toBe(thrown);
        }
        expect(multi.running).toBe(0);
      } finally {
        multi.close();
        driver.dispose();
        for (const e of easies) e.close();
      }
      expect([...driver.pollers.keys()]).toEqual([]);
      expect(driver.actionErrors).toEqual([]);
    },
  );

  it('transfers that fail still settle in manual mode (connection refused, HTTP error status)', async () => {
    // A port with nothing listening: bind one, note it, close it.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const deadPort = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const multi = new Multi({ driver: 'manual' });
    const driver = installManualDriver(multi);
    const refused = new Easy().setopt('URL', `http://127.0.0.1:${deadPort}/`);
    const notFound = new Easy().setopt('URL', `${server.url}/status/404`);
    try {
      const [a, b] = await Promise.allSettled([multi.perform(refused), multi.perform(notFound)]);
      expect(a.status).toBe('rejected');
      expect(((a as PromiseRejectedResult).reason as CurlError).code).toBe('CURLE_COULDNT_CONNECT');
      expect(b.status).toBe('fulfilled');
      expect((b as PromiseFulfilledResult<{ status: number }>).value.status).toBe(404);
    } finally {
      multi.close();
      driver.dispose();
      refused.close();
      notFound.close();
    }
    expect(driver.actionErrors).toEqual([]);
    expect(driver.problems).toEqual([]);
    expect([...driver.pollers.keys()]).toEqual([]);
  });

  it('socketAction() inside SOCKETFUNCTION and TIMERFUNCTION throws CURLM_RECURSIVE_API_CALL, and the transfer still completes', async () => {
    const multi = new Multi({ driver: 'manual' });
    const caught: Array<{ where: string; error: unknown }> = [];
    let attempts = 0;
    const driver = installManualDriver(multi, {
      socket: (fd) => {
        attempts++;
        try {
          multi.socketAction(fd, CURL_CSELECT_IN);
          caught.push({ where: 'SOCKETFUNCTION', error: 'no error' });
        } catch (error) {
          caught.push({ where: 'SOCKETFUNCTION', error });
        }
      },
      timer: () => {
        attempts++;
        try {
          multi.socketAction(CURL_SOCKET_TIMEOUT, 0);
          caught.push({ where: 'TIMERFUNCTION', error: 'no error' });
        } catch (error) {
          caught.push({ where: 'TIMERFUNCTION', error });
        }
      },
    });
    const easy = new Easy().setopt('URL', `${server.url}/bytes?n=100000`);
    try {
      const transfer = await multi.perform(easy);
      expect(transfer.status).toBe(200);
      expect(transfer.body.equals(expectedBytes(100_000))).toBe(true);
    } finally {
      multi.close();
      driver.dispose();
      easy.close();
    }
    expect(caught).toHaveLength(attempts);
    expect(caught.some((c) => c.where === 'SOCKETFUNCTION')).toBe(true);
    expect(caught.some((c) => c.where === 'TIMERFUNCTION')).toBe(true);
    for (const { error } of caught) {
      expect(error).toBeInstanceOf(CurlError);
      expect((error as CurlError).code).toBe('CURLM_RECURSIVE_API_CALL');
    }
    expect(driver.actionErrors).toEqual([]);
    expect(driver.problems).toEqual([]);
  });

  it('perform() throws unless both SOCKETFUNCTION and TIMERFUNCTION are set, and leaves the Easy usable', async () => {
    const multi = new Multi({ driver: 'manual' });
    const easy = new Easy().setopt('URL', `${server.url}/hello`);
    try {
      expect(() => multi.perform(easy)).toThrow(Error);
      multi.setopt('SOCKETFUNCTION', () => 0);
      expect(() => multi.perform(easy)).toThrow(Error);
      multi.setopt('SOCKETFUNCTION', null);
      multi.setopt('TIMERFUNCTION', () => 0);
      expect(() => multi.perform(easy)).toThrow(Error);
      expect(multi.running).toBe(0);

      // With both set (a real driver), the same Easy performs.
      const driver = installManualDriver(multi);
      try {
        const transfer = await multi.perform(easy);
        expect(transfer.body.toString()).toBe('hello world\n');
      } finally {
        driver.dispose();
      }
    } finally {
      multi.close();
      easy.close();
    }
  });

  it('socketAction() refuses a negative fd other than CURL_SOCKET_TIMEOUT, or one past int32, while a transfer waits (no crash)', async () => {
    const multi = new Multi({ driver: 'manual' });
    const easy = new Easy().setopt('URL', `${server.url}/hello`);
    const driver = installManualDriver(multi);
    try {
      const transfer = multi.perform(easy);
      await sleep(20);  // the transfer is waiting on its socket
      for (const fd of [-2, -3, -1000, -(2 ** 31), 2 ** 32 - 2, 2 ** 31]) {
        expect(() => multi.socketAction(fd, 0), String(fd)).toThrow(RangeError);
      }
      expect((await transfer).body.toString()).toBe('hello world\n');
    } finally {
      driver.dispose();
      multi.close();
      easy.close();
    }
  });

  it("a 'uv' Multi needs neither callback", async () => {
    const multi = new Multi({ driver: 'uv' });
    const easy = new Easy().setopt('URL', `${server.url}/hello`);
    try {
      const transfer = await multi.perform(easy);
      expect(transfer.body.toString()).toBe('hello world\n');
    } finally {
      multi.close();
      easy.close();
    }
  });
});

// ---------------------------------------------------------------------------
// Poller on its own
// ---------------------------------------------------------------------------

/** A connected loopback TCP pair: `fd` is the client end (owned by the caller), `peer` the server end. */
async function connectedPair(): Promise<{ fd: number; peer: net.Socket; close: () => Promise<void> }> {
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
  const client = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  const peer = await accepted;
  peer.on('error', () => undefined);
  const fd = adoptSocket(client);
  return {
    fd,
    peer,
    close: async () => {
      peer.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}

describe('Poller', () => {
  it('reports CURL_CSELECT_IN (status 0) once the fd is readable, not before; CURL_CSELECT_OUT for a writable fd; nothing after stop()', async () => {
    const pair = await connectedPair();
    const poller = new Poller(pair.fd);
    try {
      const seen: Array<[number, number]> = [];
      poller.start(CURL_CSELECT_IN, (status, events) => {
        seen.push([status, events]);
        poller.stop(); // level-triggered: the byte stays unread
      });
      await sleep(100);
      expect(seen).toEqual([]); // nothing to read yet

      pair.peer.write('x');
      expect(await waitFor(() => seen.length > 0, 2000)).toBe(true);
      expect(seen[0]).toEqual([0, CURL_CSELECT_IN]);
      await sleep(50);
      expect(seen).toHaveLength(1); // stopped inside the callback

      // Restart for writability only: a fresh connected socket is writable at once.
      const out: Array<[number, number]> = [];
      poller.start(CURL_CSELECT_OUT, (status, events) => {
        out.push([status, events]);
        poller.stop();
      });
      expect(await waitFor(() => out.length > 0, 2000)).toBe(true);
      expect(out[0]).toEqual([0, CURL_CSELECT_OUT]);

      // Both: readable (the unread byte) and writable.
      const both: Array<[number, number]> = [];
      poller.start(CURL_CSELECT_IN | CURL_CSELECT_OUT, (status, events) => {
        both.push([status, events]);
        poller.stop();
      });
      expect(await waitFor(() => both.length > 0, 2000)).toBe(true);
      expect(both[0]).toEqual([0, CURL_CSELECT_IN | CURL_CSELECT_OUT]);
    } finally {
      poller.close();
      closeSocket(pair.fd);
      await pair.close();
    }
  });

  it('close() is idempotent, stop() after close() is harmless, start() after close() throws, and a closed Poller never calls back', async () => {
    const pair = await connectedPair();
    try {
      const idle = new Poller(pair.fd);
      idle.close();
      expect(() => idle.close()).not.toThrow();
      expect(() => idle.stop()).not.toThrow();
      expect(() => idle.start(CURL_CSELECT_IN, () => undefined)).toThrow(Error);

      // Closed while watching a readable fd, in the same tick: no call ever comes.
      pair.peer.write('y');
      await sleep(50);
      let calls = 0;
      const watching = new Poller(pair.fd);
      watching.start(CURL_CSELECT_IN, () => {
        calls++;
      });
      watching.close();
      watching.close();
      await sleep(100);
      expect(calls).toBe(0);

      // The fd can be watched again by a new Poller after the old one closed.
      const again = new Poller(pair.fd);
      let readable = 0;
      again.start(CURL_CSELECT_IN, (status, events) => {
        if (status === 0 && events & CURL_CSELECT_IN) readable++;
        again.stop();
      });
      expect(await waitFor(() => readable > 0, 2000)).toBe(true);
      again.close();
      again.close();
    } finally {
      closeSocket(pair.fd);
      await pair.close();
    }
  });

  it('start() throws EBADF for an fd closed since the Poller was made (libuv would abort the process), and EEXIST while another Poller watches the fd', async () => {
    const pair = await connectedPair();
    const first = new Poller(pair.fd);
    const second = new Poller(pair.fd);
    try {
      first.start(CURL_CSELECT_OUT, () => undefined);
      expect(() => second.start(CURL_CSELECT_OUT, () => undefined)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
      first.stop();
      const calls: number[] = [];
      second.start(CURL_CSELECT_OUT, (status, events) => {
        calls.push(events);
        second.stop();
      });
      expect(await waitFor(() => calls.length > 0, 2000)).toBe(true);
    } finally {
      first.close();
      second.close();
    }
    const closed = new Poller(pair.fd);
    try {
      closeSocket(pair.fd);
      expect(() => closed.start(CURL_CSELECT_IN, () => undefined)).toThrow(expect.objectContaining({ code: 'EBADF' }));
      await sleep(20);  // a loop iteration: nothing was registered, so nothing aborts
    } finally {
      closed.close();
      await pair.close();
    }
  });

  it('rejects an fd that is not an integer >= 0', () => {
    expect(() => new Poller(-1)).toThrow(RangeError);
    expect(() => new Poller(1.5)).toThrow(RangeError);
  });
});

// Every fd an OPENSOCKETFUNCTION hands to libcurl comes back through
// CLOSESOCKETFUNCTION exactly once, whatever way the transfer ends, and the
// process's fd count returns to where it started.
import { describe, it, expect } from 'vitest';

import {
  Easy,
  CurlError,
  createSocket,
  closeSocket,
  CURL_SOCKET_BAD,
  CURL_SOCKOPT_OK,
  CURL_SOCKOPT_ERROR,
  CURL_PREREQFUNC_OK,
  CURL_PREREQFUNC_ABORT,
} from '../dist/index.js';
import { startHttpServer, type TestServer } from './helpers/servers';
import { isCloexec, listFds, openFdCount, socketInode } from './helpers/fds';
import { waitFor } from './helpers/wait';

const KINDS = [
  'success',
  'refuse', // opensocket returns CURL_SOCKET_BAD
  'opensocketThrow', // opensocket throws (before creating a socket)
  'sockoptError', // sockopt returns CURL_SOCKOPT_ERROR
  'sockoptThrow',
  'prereqThrow',
  'prereqAbort',
  'timeout', // TIMEOUT_MS 50 on /slow?ms=500
] as const;
type Kind = (typeof KINDS)[number];

const TOTAL = 1000;
const BATCH = 50;

interface Expectation {
  code?: string;
  cause?: 'same' | 'none';
}

const EXPECTED: Record<Kind, Expectation> = {
  success: {},
  refuse: { code: 'CURLE_COULDNT_CONNECT', cause: 'none' },
  opensocketThrow: { code: 'CURLE_COULDNT_CONNECT', cause: 'same' },
  sockoptError: { code: 'CURLE_ABORTED_BY_CALLBACK', cause: 'none' },
  sockoptThrow: { code: 'CURLE_ABORTED_BY_CALLBACK', cause: 'same' },
  prereqThrow: { code: 'CURLE_ABORTED_BY_CALLBACK', cause: 'same' },
  prereqAbort: { code: 'CURLE_ABORTED_BY_CALLBACK', cause: 'none' },
  timeout: { code: 'CURLE_OPERATION_TIMEDOUT', cause: 'none' },
};

/** Kinds whose socket reaches connect(). */
const CONNECTS: ReadonlySet<Kind> = new Set<Kind>(['success', 'prereqThrow', 'prereqAbort', 'timeout']);

/** Books every fd handed to libcurl and back, across all transfers. */
class Ledger {
  /** fds libcurl holds right now (handed out by an opensocket, not yet given to closesocket). */
  readonly live = new Set<number>();
  opened = 0;
  closed = 0;
  readonly problems: string[] = [];
  /** socket inode of every fd at the time it was opened, to check it is gone afterwards */
  readonly inodes: number[] = [];
  notCloexec = 0;

  open(fd: number): void {
    // An fd number we still think libcurl holds was handed out again by the
    // kernel: someone closed it behind our back.
    if (this.live.has(fd)) this.problems.push(`fd ${fd} opened while still live (closed without closesocket?)`);
    this.live.add(fd);
    this.opened += 1;
    this.inodes.push(socketInode(fd) ?? -1);
    if (isCloexec(fd) !== true) this.notCloexec += 1;
  }

  close(fd: number): void {
    if (!this.live.has(fd)) this.problems.push(`closesocket got fd ${fd}, which is not live (closed twice or never opened)`);
    this.live.delete(fd);
    this.closed += 1;
  }
}

function kindOf(i: number): Kind {
  return KINDS[i % KINDS.length] as Kind;
}

interface Outcome {
  kind: Kind;
  ok: boolean;
  code?: string;
  cause?: unknown;
  thrown?: unknown;
  body?: string;
  opened: number[];
  closed: number[];
}

async function runOne(server: TestServer, kind: Kind, ledger: Ledger): Promise<Outcome> {
  const easy = new Easy();
  const opened: number[] = [];
  const closed: number[] = [];
  const thrown = new Error(`${kind} fault`);
  easy.setopt('URL', kind === 'timeout' ? `${server.url}/slow?ms=500` : `${server.url}/hello`);
  easy.setopt('FORBID_REUSE', true);
  if (kind === 'timeout') easy.setopt('TIMEOUT_MS', 50);
  easy.setopt('OPENSOCKETFUNCTION', (_purpose, address) => {
    if (kind === 'refuse') return CURL_SOCKET_BAD;
    if (kind === 'opensocketThrow') throw thrown;
    const fd = createSocket(address);
    opened.push(fd);
    ledger.open(fd);
    return fd;
  });
  easy.setopt('SOCKOPTFUNCTION', () => {
    if (kind === 'sockoptError') return CURL_SOCKOPT_ERROR;
    if (kind === 'sockoptThrow') throw thrown;
    return CURL_SOCKOPT_OK;
  });
  easy.setopt('PREREQFUNCTION', () => {
    if (kind === 'prereqThrow') throw thrown;
    if (kind === 'prereqAbort') return CURL_PREREQFUNC_ABORT;
    return CURL_PREREQFUNC_OK;
  });
  easy.setopt('CLOSESOCKETFUNCTION', (fd) => {
    closed.push(fd);
    ledger.close(fd);
    closeSocket(fd);
    return 0;
  });
  try {
    const t = await easy.perform();
    return { kind, ok: true, body: t.body.toString(), opened, closed };
  } catch (err) {
    return {
      kind,
      ok: false,
      code: err instanceof CurlError ? err.code : `not a CurlError: ${String(err)}`,
      cause: (err as Error).cause,
      thrown,
      opened,
      closed,
    };
  } finally {
    easy.close();
  }
}

describe('fd accounting', () => {
  it(`${TOTAL} FORBID_REUSE transfers in batches of ${BATCH}: every fd closed exactly once, fd count back to baseline`, async () => {
    const server = await startHttpServer();
    try {
      // Warm-up: the default Multi's own fds exist from here on.
      const warm = new Easy();
      warm.setopt('URL', `${server.url}/hello`);
      warm.setopt('FORBID_REUSE', true);
      expect((await warm.perform()).body.toString()).toBe('hello world\n');
      warm.close();
      await waitFor(() => server.openConnections() === 0, 2000, 'the warm-up connection to close');
      server.resetCounters();
      const baseline = openFdCount();
      const baselineFds = listFds();

      const ledger = new Ledger();
      const outcomes: Outcome[] = [];
      for (let start = 0; start < TOTAL; start += BATCH) {
        const batch: Promise<Outcome>[] = [];
        for (let i = start; i < Math.min(TOTAL, start + BATCH); i++) batch.push(runOne(server, kindOf(i), ledger));
        outcomes.push(...(await Promise.all(batch)));
      }
      expect(outcomes).toHaveLength(TOTAL);

      // Each outcome is what its kind must produce.
      const mismatches: string[] = [];
      const seen = new Map<Kind, number>();
      for (const o of outcomes) {
        const want = EXPECTED[o.kind];
        let good: boolean;
        if (want.code === undefined) {
          good = o.ok && o.body === 'hello world\n';
        } else {
          good =
            !o.ok &&
            o.code === want.code &&
            (want.cause === 'same' ? o.cause === o.thrown : o.cause === undefined);
        }
        if (good) seen.set(o.kind, (seen.get(o.kind) ?? 0) + 1);
        else if (mismatches.length < 10) mismatches.push(`${o.kind}: ok=${o.ok} code=${o.code} cause=${String(o.cause)}`);
      }
      expect(mismatches).toEqual([]);
      // every outcome type actually occurred, as often as it was asked for
      for (const kind of KINDS) expect(seen.get(kind), kind).toBe(TOTAL / KINDS.length);

      // Per transfer: the fds handed to closesocket are exactly the fds opened.
      for (const o of outcomes) {
        expect(o.closed.slice().sort(), `${o.kind}: closed vs opened`).toEqual(o.opened.slice().sort());
        if (o.kind === 'refuse' || o.kind === 'opensocketThrow') expect(o.opened).toEqual([]);
        else expect(o.opened.length, o.kind).toBeGreaterThanOrEqual(1);
      }
      // Across all transfers: each fd came back once, none twice, none missing.
      expect(ledger.problems).toEqual([]);
      expect(ledger.live.size).toBe(0);
      expect(ledger.closed).toBe(ledger.opened);
      expect(ledger.notCloexec).toBe(0);

      // Sockets refused before connect() never reached the server; the others did, once each.
      const connecting = outcomes.filter((o) => CONNECTS.has(o.kind)).reduce((n, o) => n + o.opened.length, 0);
      await waitFor(() => server.connections === connecting, 2000, `${connecting} connections at the server`);
      expect(server.connections).toBe(connecting);
      const successes = TOTAL / KINDS.length;
      expect(server.requests).toBeGreaterThanOrEqual(successes);
      expect(server.requests).toBeLessThanOrEqual(successes + TOTAL / KINDS.length); // + the timeouts'

      // Nothing left open: server-side sockets go first, then the count matches.
      await waitFor(() => server.openConnections() === 0, 5000, 'the server to see every connection close');
      const live = new Set(Array.from(listFds().values()));
      const leftover = ledger.inodes.filter((inode) => live.has(`socket:[${inode}]`));
      expect(leftover).toEqual([]);
      await waitFor(() => openFdCount() <= baseline, 2000, `fd count back to ${baseline}`).catch(() => undefined);
      const extra = Array.from(listFds()).filter(([fd, target]) => baselineFds.get(fd) !== target);
      expect(extra).toEqual([]);
      expect(openFdCount()).toBe(baseline);
    } finally {
      await server.close();
    }
  }, 60_000);
});

/**
 * Process and thread lifecycle: processes exit by themselves after using the
 * binding, sockets made by libcurl are not inherited by child processes,
 * worker threads each have their own state and can be terminated mid-transfer,
 * and garbage-collected handles free their memory without crashing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CURL_SOCKOPT_OK, Easy } from '../dist/index.js';
import { O_CLOEXEC, O_NONBLOCK, fdFlags, fdsOfPid, isCloexec, listSocketFds, parseSocketInode, socketInode } from './helpers/fds';
import { startHttpServer, type TestServer } from './helpers/servers';
import { waitUntil as waitFor } from './helpers/wait';

const CHILDREN_DIR = path.resolve(__dirname, 'children');
const WORKERS_DIR = path.resolve(__dirname, 'workers');

interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** performance.now() when the first line starting with `marker` arrived on stdout. */
  markerAt: number | undefined;
  exitedAt: number;
  killed: boolean;
}

/**
 * Runs `node <args>` and waits for it to exit. If it is still running
 * `killAfterMs` after start, it is killed (and `killed` is set).
 */
function runNode(args: string[], marker: string, killAfterMs: number): Promise<ChildRun> {
  return new Promise<ChildRun>((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let markerAt: number | undefined;
    let killed = false;
    const killer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, killAfterMs);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (markerAt === undefined && stdout.split('\n').some((l) => l.startsWith(marker))) markerAt = performance.now();
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => {
      clearTimeout(killer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      const exitedAt = performance.now();
      clearTimeout(killer);
      // Let the pipes drain before resolving.
      child.on('close', () => resolve({ code, signal, stdout, stderr, markerAt, exitedAt, killed }));
    });
  });
}

/** Parses /proc/<pid>/net/tcp{,6}: socket inode by local port. */
/** Inodes of this process's TCP sockets with that local and remote port. The
 * local port alone is not enough: a listening socket or a connection to another
 * peer can have the same port number. */
function tcpInodes(localPort: number, remotePort: number): number[] {
  const out: number[] = [];
  const portOf = (address: string): number => parseInt(address.slice(address.lastIndexOf(':') + 1), 16);
  for (const file of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const inode = Number(cols[9]);
      if (!Number.isFinite(inode) || inode === 0) continue;
      if (portOf(cols[1] as string) === localPort && portOf(cols[2] as string) === remotePort) out.push(inode);
    }
  }
  return out;
}

let http: TestServer;

beforeAll(async () => {
  http = await startHttpServer();
});

afterAll(async () => {
  await http.close();
});

describe('processes exit by themselves', () => {
  it('after one transfer, a child exits within 1 s of printing its result', async () => {
    const run = await runNode([path.join(CHILDREN_DIR, 'one-transfer.mjs'), `${http.url}/bytes?n=4321`], 'RESULT', 15_000);
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('RESULT 200 4321 1');
    expect(run.killed).toBe(false);
    expect(run.code).toBe(0);
    expect(run.markerAt).toBeDefined();
    expect(run.exitedAt - (run.markerAt as number)).toBeLessThan(1000);
  }, 30_000);

  it('the pooled keep-alive connection of a child that exited is closed', async () => {
    // The pooled connection is closed when the child exits (process teardown), not held open.
    const server = await startHttpServer();
    try {
      const run = await runNode([path.join(CHILDREN_DIR, 'one-transfer.mjs'), `${server.url}/hello`], 'RESULT', 15_000);
      expect(run.code).toBe(0);
      expect(run.killed).toBe(false);
      expect(server.connections).toBe(1);
      expect(await waitFor(() => server.openConnections() === 0, 5000)).toBe(true);
    } finally {
      await server.close();
    }
  }, 30_000);

  it('a child that creates an Easy and a Multi and does nothing exits by itself', async () => {
    const run = await runNode([path.join(CHILDREN_DIR, 'idle-handles.mjs')], 'READY', 15_000);
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('READY false 0');
    expect(run.killed).toBe(false);
    expect(run.code).toBe(0);
    expect(run.exitedAt - (run.markerAt as number)).toBeLessThan(1000);
  }, 30_000);
});

describe('sockets are not inherited by child processes', () => {
  it('a socket the binding opens for libcurl is born close-on-exec and non-blocking', async () => {
    const server = await startHttpServer();
    const flags: Array<number | undefined> = [];
    // SOCKOPTFUNCTION runs right after the socket is made, before libcurl changes any flag.
    const easy = new Easy().setopt('URL', `${server.url}/hello`).setopt('SOCKOPTFUNCTION', (fd: number) => {
      flags.push(fdFlags(fd));
      return CURL_SOCKOPT_OK;
    });
    try {
      const t = await easy.perform();
      expect(t.status).toBe(200);
      expect(flags.length).toBe(1);
      expect((flags[0] ?? 0) & O_CLOEXEC).toBe(O_CLOEXEC);
      expect((flags[0] ?? 0) & O_NONBLOCK).toBe(O_NONBLOCK);
    } finally {
      easy.close();
      await server.close();
    }
  });

  it('the socket of a transfer in flight is close-on-exec and absent from a spawned child', async () => {
    const server = await startHttpServer();
    const easy = new Easy().setopt('URL', `${server.url}/slow?ms=1500`);
    const before = new Set(listSocketFds().keys());
    try {
      const transfer = easy.perform();
      transfer.catch(() => {});  // awaited below; closing early on a failed assertion must not leave it unhandled
      expect(await waitFor(() => server.requests === 1, 10_000)).toBe(true);
      await new Promise((r) => setTimeout(r, 200));

      // Find libcurl's socket: the fd whose inode is the TCP socket bound to the
      // client port the server saw.
      const clientPort = server.remotePorts[0] as number;
      expect(clientPort).toBeGreaterThan(0);
      const inodes = tcpInodes(clientPort, server.port);
      expect(inodes.length).toBe(1);
      const curlInode = inodes[0] as number;
      const now = listSocketFds();
      const curlFds = [...now].filter(([, inode]) => inode === curlInode).map(([fd]) => fd);
      expect(curlFds.length).toBe(1);
      const curlFd = curlFds[0] as number;
      expect(before.has(curlFd)).toBe(false);
      expect(isCloexec(curlFd)).toBe(true);

      // Every socket that appeared for this transfer (libcurl's and the server's accepted one).
      const newInodes = new Set([...now].filter(([fd]) => !before.has(fd)).map(([, inode]) => inode));
      expect(newInodes.has(curlInode)).toBe(true);

      const child = spawn('sleep', ['1'], { stdio: 'ignore' });
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', () => resolve());
        child.once('error', reject);
      });
      const childFds = fdsOfPid(child.pid as number);
      // The child's fd table was readable (it has at least stdin/stdout/stderr).
      expect(childFds.size).toBeGreaterThanOrEqual(3);
      const childInodes = new Set<number>();
      for (const target of childFds.values()) {
        const inode = parseSocketInode(target);
        if (inode !== undefined) childInodes.add(inode);
      }
      expect(childInodes.has(curlInode)).toBe(false);
      for (const inode of newInodes) expect(childInodes.has(inode)).toBe(false);
      // libcurl's socket was still open in this process while the child ran.
      expect(socketInode(curlFd)).toBe(curlInode);

      const t = await transfer;
      expect(t.status).toBe(200);
      expect(t.info.localPort).toBe(clientPort);
      await exited;
    } finally {
      easy.close();
      await server.close();
    }
  }, 30_000);
});

describe('worker threads', () => {
  interface WorkerResult {
    done: boolean;
    id: number;
    error?: string;
    results: Array<{ n: number; status: number; length: number; intact: boolean; numConnects: number }>;
  }

  function runTransferWorker(id: number, count: number): Promise<{ message: WorkerResult; exitCode: number }> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(path.join(WORKERS_DIR, 'transfer-worker.js'), {
        workerData: { mode: 'transfers', url: http.url, count, id },
      });
      let message: WorkerResult | undefined;
      worker.on('message', (m: WorkerResult) => {
        message = m;
      });
      worker.on('error', reject);
      worker.on('exit', (exitCode) => {
        if (message === undefined) reject(new Error(`worker ${id} exited (${exitCode}) without a result`));
        else resolve({ message, exitCode });
      });
    });
  }

  it('4 workers each do 20 transfers, concurrently, and exit by themselves', async () => {
    const before = http.requests;
    const runs = await Promise.all([0, 1, 2, 3].map((id) => runTransferWorker(id, 20)));
    for (const [id, { message, exitCode }] of runs.entries()) {
      expect(message.error).toBeUndefined();
      expect(message.done).toBe(true);
      expect(message.id).toBe(id);
      expect(message.results).toHaveLength(20);
      message.results.forEach((r, i) => {
        expect(r.n).toBe(1000 + id * 100 + i);
        expect(r.status).toBe(200);
        expect(r.length).toBe(r.n);
        expect(r.intact).toBe(true);
      });
      // One Easy per worker: one connection, reused after the first transfer.
      expect(message.results[0]!.numConnects).toBe(1);
      expect(message.results.slice(1).every((r) => r.numConnects === 0)).toBe(true);
      expect(exitCode).toBe(0);
    }
    expect(http.requests - before).toBe(80);
    // The main thread still works.
    const easy = new Easy().setopt('URL', `${http.url}/hello`);
    try {
      expect((await easy.perform()).body.toString()).toBe('hello world\n');
    } finally {
      easy.close();
    }
  }, 60_000);

  it('terminating a worker in the middle of a transfer leaves the main thread healthy', async () => {
    const server = await startHttpServer();
    try {
      const worker = new Worker(path.join(WORKERS_DIR, 'transfer-worker.js'), { workerData: { mode: 'slow', url: server.url } });
      const messages: unknown[] = [];
      worker.on('message', (m: unknown) => messages.push(m));
      const errors: unknown[] = [];
      worker.on('error', (e) => errors.push(e));
      const exited = new Promise<number>((resolve) => worker.on('exit', resolve));

      expect(await waitFor(() => server.requests === 1, 15_000)).toBe(true);
      expect(messages).toContainEqual({ started: true });
      expect(server.openConnections()).toBe(1);

      const start = performance.now();
      await worker.terminate();
      const exitCode = await exited;
      expect(performance.now() - start).toBeLessThan(5000);
      expect(exitCode).toBe(1); // terminate() reports 1
      expect(errors).toEqual([]);
      expect(messages).not.toContainEqual({ finished: true });

      // The worker's connection is closed by its environment cleanup.
      expect(await waitFor(() => server.openConnections() === 0, 5000)).toBe(true);

      // The main thread keeps working, on the same server.
      const easy = new Easy().setopt('URL', `${server.url}/hello`);
      try {
        const t = await easy.perform();
        expect(t.status).toBe(200);
        expect(t.body.toString()).toBe('hello world\n');
      } finally {
        easy.close();
      }
      // And a new worker can still use the binding.
      const again = await runTransferWorker(9, 3);
      expect(again.message.done).toBe(true);
      expect(again.message.results.every((r) => r.intact && r.status === 200)).toBe(true);
    } finally {
      await server.close();
    }
  }, 60_000);

  // JS can no longer run once termination starts, so whatever the binding
  // does with the callback's failure must not end in a fatal napi_throw.
  for (const callback of ['WRITEFUNCTION', 'TIMERFUNCTION']) {
    it(`terminating a worker while its ${callback} runs ends only the worker`, async () => {
      const server = await startHttpServer();
      try {
        const worker = new Worker(path.join(WORKERS_DIR, 'transfer-worker.js'), { workerData: { mode: 'spin', url: server.url, callback } });
        const messages: unknown[] = [];
        worker.on('message', (m: unknown) => messages.push(m));
        const exited = new Promise<number>((resolve) => worker.on('exit', resolve));
        expect(await waitFor(() => messages.length > 0, 15_000)).toBe(true);
        expect(messages[0]).toEqual({ inCallback: true });
        await worker.terminate();
        expect(await exited).toBe(1);
        // This process is alive and the binding still works here.
        const easy = new Easy().setopt('URL', `${server.url}/hello`);
        try {
          expect((await easy.perform()).status).toBe(200);
        } finally {
          easy.close();
        }
      } finally {
        await server.close();
      }
    }, 60_000);
  }
});

describe('garbage collection', () => {
  it('1,000s of dropped Easy handles are collected without a crash and RSS stays bounded', async () => {
    const rounds = 8;
    const run = await runNode(
      ['--expose-gc', path.join(CHILDREN_DIR, 'gc-churn.mjs'), http.url, String(rounds)],
      'RESULT',
      90_000,
    );
    expect(run.stderr).toBe('');
    expect(run.killed).toBe(false);
    expect(run.signal).toBeNull();
    expect(run.code).toBe(0);
    const line = run.stdout.split('\n').find((l) => l.startsWith('RESULT ')) as string;
    expect(line).toBeDefined();
    const { performed, rss } = JSON.parse(line.slice('RESULT '.length)) as { performed: number; rss: number[] };
    expect(performed).toBe(rounds * 50);
    expect(rss).toHaveLength(rounds);
    // A leaked handle costs several KiB of native memory, so leaking every one
    // would add several MiB per round of 1,000; the first round is warm-up.
    const growth = (rss[rounds - 1] as number) - (rss[1] as number);
    expect(growth).toBeLessThan(16 * 1024 * 1024);
  }, 120_000);

  it('handles whose callbacks refer to the handle itself are collected once unused; a close hook lives while its connection does', async () => {
    const run = await runNode(['--expose-gc', path.join(CHILDREN_DIR, 'callback-cycles.mjs')], '{', 30_000);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as Record<string, { collected: boolean; ran: boolean }>;
    const expected = { collected: true, ran: true };
    expect(result).toEqual({
      plainEasy: expected,  // the control: the child can see a collection at all
      easyCallbacks: expected,
      closedEasySpareWrapper: expected,
      easyCloseSocket: expected,
      closeHookOutlivesEasy: expected,
      manualMulti: expected,
      stoppedPoller: expected,
    });
  });
});

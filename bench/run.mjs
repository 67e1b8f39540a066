#!/usr/bin/env node
// curl-sockets benchmark harness: `npm run bench` (or `node bench/run.mjs [options]`).
//
// Starts one server on 127.0.0.1 (nginx if installed, else a Node server), then for each
// round, for each scenario, runs every client once, in a shuffled order, each in its own
// child process (so CPU time and peak RSS are that client's alone). Prints medians over
// the rounds with their spread and the ratios between clients, checks the targets of the
// issue, and writes everything to bench/results/latest.json. See bench/README.md.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);

// ---------------------------------------------------------------- arguments

const USAGE = `usage: node bench/run.mjs [options]
  --rounds N        interleaved rounds (default 5; medians need at least 5)
  --quick           smoke run: small counts, 1 round
  --only a,b,...    clients and/or scenarios to run (names below; 'curl-sockets*' matches a prefix)
  --server KIND     auto (default: nginx if installed, else Node), nginx or node
  --server-cc NAME  TCP congestion control for the server's sockets (e.g. cubic, bbr),
                    set through a preloaded shim (bench/server-cc.c); default: the
                    machine's. s3 on loopback depends on it (bench/README.md)
  --seed N          seed of the per-round client order (default: random, printed)
  --out FILE        JSON results file (default bench/results/latest.json)
  --timeout S       seconds before one client run is killed and counted as failed (default 180)
  --no-pin          do not pin (default with 2+ CPUs and taskset: server on the last CPU,
                    each client on the others)
  --strict          exit with status 1 if any client run failed or was unavailable
  --list            print the clients and scenarios and exit
  --help`;

function parseArgs(argv) {
  const a = { rounds: null, quick: false, only: null, server: 'auto', serverCc: null, seed: null, out: null, timeout: 180, list: false, pin: true, strict: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fatal(`${arg} needs a value\n${USAGE}`);
      return argv[++i];
    };
    const [flag, inline] = arg.includes('=') ? arg.split(/=(.*)/s) : [arg, undefined];
    const v = () => (inline !== undefined ? inline : value());
    switch (flag) {
      case '--rounds': a.rounds = toInt(v(), '--rounds'); break;
      case '--quick': a.quick = true; break;
      case '--only': a.only = v().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--server': a.server = v(); break;
      case '--server-cc': a.serverCc = v(); break;
      case '--seed': a.seed = toInt(v(), '--seed'); break;
      case '--out': a.out = path.resolve(v()); break;
      case '--timeout': a.timeout = toInt(v(), '--timeout'); break;
      case '--list': a.list = true; break;
      case '--strict': a.strict = true; break;
      case '--pin': a.pin = true; break;
      case '--no-pin': a.pin = false; break;
      case '-h': case '--help': console.log(USAGE); process.exit(0); break;
      default: fatal(`unknown option ${arg}\n${USAGE}`);
    }
  }
  if (!['auto', 'nginx', 'node'].includes(a.server)) fatal(`--server must be auto, nginx or node`);
  if (a.timeout < 1) fatal('--timeout must be at least 1 (seconds)');
  if (a.serverCc !== null && !/^[a-z0-9_-]{1,15}$/.test(a.serverCc)) fatal('--server-cc needs a congestion control name such as cubic or bbr');
  return a;
}

function toInt(s, name) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0) fatal(`${name} needs a whole number, got ${s}`);
  return n;
}

function fatal(msg) {
  console.error(msg);
  process.exit(2);
}

// ---------------------------------------------------------------- clients and scenarios

const RAW_BIN = path.join(here, '.build', 'raw-multi');
const nodeClient = (file, extra = []) => ({ cmd: process.execPath, args: [path.join(here, 'clients', file), ...extra] });

const CLIENTS = [
  { name: 'raw-c', desc: 'libcurl multi in C, new easy handle per request', ...{ cmd: RAW_BIN, args: ['--mode', 'new-easy'] }, callbacks: true, native: true },
  { name: 'raw-c-reuse', desc: 'libcurl multi in C, one reused easy handle per slot', ...{ cmd: RAW_BIN, args: ['--mode', 'reuse-easy'] }, callbacks: true, native: true },
  // Not in the default set (--only raw-c-epoll): the same C client driven by
  // curl_multi_socket_action on epoll, the pattern curl-sockets uses on libuv.
  { name: 'raw-c-epoll', desc: 'libcurl multi in C, new easy per request, multi_socket_action + epoll', ...{ cmd: RAW_BIN, args: ['--mode', 'new-easy', '--loop', 'epoll'] }, callbacks: true, native: true, optional: true },
  // s2 only: the C clients with the handshake ACK held back for the request, as
  // curl-sockets does natively for HTTP (src/handshake_ack.h), so that the s2 ratios
  // can be read both against plain libcurl and against C doing the same.
  { name: 'raw-c-defer-ack', desc: 'raw-c with TCP_DEFER_ACCEPT set in a C SOCKOPTFUNCTION (s2 only)', ...{ cmd: RAW_BIN, args: ['--mode', 'new-easy', '--defer-ack'] }, callbacks: true, native: true, onlyIn: ['s2-new-conn', 's2-new-conn-cb'] },
  { name: 'raw-c-reuse-defer-ack', desc: 'raw-c-reuse with TCP_DEFER_ACCEPT set in a C SOCKOPTFUNCTION (s2 only)', ...{ cmd: RAW_BIN, args: ['--mode', 'reuse-easy', '--defer-ack'] }, callbacks: true, native: true, onlyIn: ['s2-new-conn', 's2-new-conn-cb'] },
  { name: 'curl-sockets', desc: 'Multi.perform, new Easy per request', ...nodeClient('curl-sockets.mjs', ['--mode', 'new-easy']), callbacks: true },
  { name: 'curl-sockets-reuse', desc: 'Multi.perform, one reused Easy per worker', ...nodeClient('curl-sockets.mjs', ['--mode', 'reuse-easy']), callbacks: true },
  // Also only with --only: both reuse clients with SO_RCVBUF set to 4 MiB from a
  // SOCKOPTFUNCTION (in C, and in JS), the socket tuning the README measures for s3.
  { name: 'raw-c-rcvbuf', desc: 'raw-c-reuse with SO_RCVBUF 4 MiB set in a C SOCKOPTFUNCTION', ...{ cmd: RAW_BIN, args: ['--mode', 'reuse-easy', '--rcvbuf', String(4 << 20)] }, callbacks: true, native: true, optional: true },
  { name: 'curl-sockets-rcvbuf', desc: 'curl-sockets-reuse with SO_RCVBUF 4 MiB set in a JS SOCKOPTFUNCTION', ...nodeClient('curl-sockets.mjs', ['--mode', 'reuse-easy', '--rcvbuf', String(4 << 20)]), callbacks: true, optional: true },
  // s3 only: the receive buffer at equal sizes. curl-sockets starts handles at
  // 64 KiB (libcurl 8.7+), raw C keeps libcurl's 16 KiB: these two give each the
  // other's size, so that s3 is also judged with both clients on the same settings.
  { name: 'raw-c-reuse-64k', desc: 'raw-c-reuse with BUFFERSIZE 64 KiB (s3 only)', ...{ cmd: RAW_BIN, args: ['--mode', 'reuse-easy', '--buffersize', '65536'] }, callbacks: true, native: true, onlyIn: ['s3-1mib'] },
  { name: 'curl-sockets-reuse-16k', desc: 'curl-sockets-reuse with BUFFERSIZE 16 KiB, libcurl\'s default (s3 only)', ...nodeClient('curl-sockets.mjs', ['--mode', 'reuse-easy', '--buffersize', '16384']), callbacks: true, onlyIn: ['s3-1mib'] },
  // s3 only: each worker's bodies written into one reused buffer (perform's `into`),
  // as the C client reuses its memory, against raw-c-reuse-64k.
  { name: 'curl-sockets-reuse-into', desc: 'curl-sockets-reuse with each worker\'s bodies written into one reused buffer, perform\'s into (s3 only)', ...nodeClient('curl-sockets.mjs', ['--mode', 'reuse-easy', '--into']), callbacks: true, onlyIn: ['s3-1mib'] },
  { name: 'undici', desc: 'undici Pool (connections = concurrency, pipelining 1)', ...nodeClient('undici.mjs') },
  { name: 'node-http', desc: 'node:http with a keep-alive Agent (maxSockets = concurrency)', ...nodeClient('node-http.mjs') },
  { name: 'fetch', desc: "global fetch, body read with arrayBuffer()", ...nodeClient('fetch.mjs') },
];

// The C reference that each client is compared with in the target checks: the same
// handle strategy (new handle per request, or reused handles).
const C_COUNTERPART = {
  'curl-sockets': 'raw-c',
  'curl-sockets-reuse': 'raw-c-reuse',
  'curl-sockets-rcvbuf': 'raw-c-rcvbuf',
  'curl-sockets-reuse-16k': 'raw-c-reuse',
  'curl-sockets-reuse-into': 'raw-c-reuse-64k',
};

function makeScenarios(quick) {
  const q = (full, small) => (quick ? small : full);
  return [
    {
      id: 's1-keepalive', title: 'small GETs, concurrency 50, keep-alive',
      body: 'small', count: q(20000, 2000), concurrency: 50, warmup: q(500, 100),
    },
    {
      id: 's2-new-conn', title: 'small GETs, concurrency 50, new connection each (FORBID_REUSE / connection: close)',
      body: 'small', count: q(5000, 500), concurrency: 50, warmup: q(250, 25), forbidReuse: true, group: 's2',
    },
    {
      id: 's2-new-conn-cb', title: 'as s2, with OPENSOCKET + SOCKOPT + CLOSESOCKET callbacks (JS for curl-sockets, C for raw-c)',
      body: 'small', count: q(5000, 500), concurrency: 50, warmup: q(250, 25), forbidReuse: true, callbacks: true, group: 's2',
    },
    {
      id: 's3-1mib', title: 'GETs of 1 MiB, concurrency 10, keep-alive',
      body: 'large', count: q(1000, 100), concurrency: 10, warmup: q(50, 5),
    },
    {
      id: 's4-latency', title: 'sequential GETs on one keep-alive connection, per-request latency',
      body: 'small', count: q(2000, 200), concurrency: 1, warmup: q(100, 20), latency: true,
    },
  ];
}

// s2 names both new-connection scenarios (the callbacks' cost is a ratio between them).
const SCENARIO_ALIASES = { s1: 's1-keepalive', s2: 's2-new-conn*', s2cb: 's2-new-conn-cb', s3: 's3-1mib', s4: 's4-latency' };

// --only tokens: exact client or scenario names, scenario aliases (s1, s2 for both s2
// scenarios, s2cb, s3, s4), or a prefix ending in '*'.
function nameMatches(token, name) {
  const t = SCENARIO_ALIASES[token] ?? token;
  return t.endsWith('*') ? name.startsWith(t.slice(0, -1)) : name === t;
}

// ---------------------------------------------------------------- helpers

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return null;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

function spreadPct(xs) {
  if (xs.length < 2) return null; // one round has no spread
  const m = median(xs);
  return m ? ((Math.max(...xs) - Math.min(...xs)) / m) * 100 : null;
}

// mulberry32: a small seeded generator for the per-round client order.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle(list, rand) {
  const a = [...list];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

const fmtInt = (n) => (n == null ? '—' : Math.round(n).toLocaleString('en-US'));
const fmt = (n, d = 1) => (n == null || !Number.isFinite(n) ? '—' : n.toFixed(d));
const fmtRatio = (n) => (n == null || !Number.isFinite(n) ? '—' : `${n.toFixed(2)}x`);

function table(headers, rows, alignLeft = [0]) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (alignLeft.includes(i) ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function sh(cmd) {
  return spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
}

// ---------------------------------------------------------------- building the C client

function buildRawClient() {
  const src = path.join(here, 'raw-multi.c');
  mkdirSync(path.dirname(RAW_BIN), { recursive: true });
  const flags = sh('curl-config --cflags --libs');
  if (flags.status !== 0) return { ok: false, error: `curl-config failed: ${(flags.stderr || '').trim() || 'not installed (apt-get install libcurl4-openssl-dev)'}` };
  const f = flags.stdout.replace(/\s+/g, ' ').trim();
  const cmd = `cc -O2 -o '${RAW_BIN}' '${src}' ${f}`;
  const r = sh(cmd);
  if (r.status !== 0) return { ok: false, error: `compiling raw-multi.c failed: ${(r.stderr || '').trim().split('\n').slice(0, 5).join(' / ')}`, cmd };
  const libs = sh(`ldd '${RAW_BIN}' | grep -i libcurl`).stdout.trim();
  return { ok: true, cmd, libcurlSo: libs.replace(/\s+\(0x[0-9a-f]+\)$/, '') };
}

// The shim that --server-cc preloads into the server. Returns the environment the
// server is started with, or an error.
function buildServerCcShim(name) {
  const so = path.join(here, '.build', 'server-cc.so');
  mkdirSync(path.dirname(so), { recursive: true });
  const cmd = `cc -O2 -shared -fPIC -o '${so}' '${path.join(here, 'server-cc.c')}' -ldl`;
  const r = sh(cmd);
  if (r.status !== 0) return { ok: false, error: `compiling server-cc.c failed: ${(r.stderr || '').trim().split('\n').slice(0, 5).join(' / ')}` };
  return { ok: true, env: { LD_PRELOAD: so, CURL_SOCKETS_BENCH_SERVER_CC: name } };
}

// The congestion control of the socket listening at `origin`, as `ss` shows it, or
// null when ss is missing or does not show one.
function listenerCongestionControl(origin) {
  const port = new URL(origin).port;
  const r = sh(`ss -tliH '( sport = :${port} )'`);
  if (r.status !== 0) return null;
  const m = /^\s+([a-z0-9_-]+)\s/m.exec(r.stdout);
  return m ? m[1] : null;
}

// ---------------------------------------------------------------- running one client

// The kernel's TCP settings that move s3 most on loopback: the congestion control
// (BBR paces the server's sends, which changes whose core does them) and the
// receive buffer limits. Read, never changed.
function tcpSettings() {
  const read = (name) => {
    try { return readFileSync(`/proc/sys/net/${name}`, 'utf8').trim().replace(/\s+/g, ' '); } catch { return null; }
  };
  return {
    congestionControl: read('ipv4/tcp_congestion_control'),
    tcpRmem: read('ipv4/tcp_rmem'),
    rmemMax: read('core/rmem_max'),
  };
}

// Machine-wide CPU time in ms (user + nice + system + steal; irq and softirq left out,
// since loopback traffic of our own processes is counted there).
function machineBusyMs(ticksPerSecond) {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = f[0] + f[1] + f[2] + (f[7] || 0);
    return (busy * 1000) / ticksPerSecond;
  } catch {
    return null;
  }
}

let currentChild = null;

// The lines a client prints around its timed work (bench/clients/common.mjs, raw-multi.c).
const TIMED_START = '{"timed":"start"}';
const TIMED_END = '{"timed":"end"}';

// Every run of a new-connection scenario leaves thousands of client-side TIME_WAIT
// sockets to its server port. A run to that same port within about a second must
// skip the ports they hold (they are too young to reuse), and Linux's connect() then
// spends up to 40 µs more per connection on its port search (__inet_hash_connect):
// whichever client ran next was slower for reasons of its own. Each such run gets
// the next port of the server's rotation instead, one whose last run was many runs ago.
let newConnRun = 0;
function originFor(scenario, server) {
  if (!scenario.forbidReuse || !server.newConnOrigins?.length) return server.origin;
  return server.newConnOrigins[newConnRun++ % server.newConnOrigins.length];
}

function runOne(client, scenario, server, timeoutS, clientCpus) {
  const body = server[scenario.body];
  const args = [
    ...client.args,
    '--url', originFor(scenario, server) + body.path,
    '--count', String(scenario.count),
    '--concurrency', String(scenario.concurrency),
    '--expect-bytes', String(body.bytes),
    '--warmup', String(scenario.warmup),
  ];
  if (scenario.forbidReuse) args.push('--forbid-reuse');
  if (scenario.callbacks) args.push('--callbacks');
  if (scenario.latency) args.push('--latency');

  const env = { ...process.env };
  // libcurl honours proxy variables; the benchmark talks to 127.0.0.1 only.
  for (const k of Object.keys(env)) if (/^(https?|all|no)_proxy$/i.test(k)) delete env[k];

  const serverMs0 = server.cpuMs();
  const busy0 = machineBusyMs(server.ticksPerSecond);
  const self0 = process.cpuUsage();
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const [cmd, argv] = clientCpus ? ['taskset', ['-c', clientCpus, client.cmd, ...args]] : [client.cmd, args];
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: root });
    currentChild = child;
    let out = '';
    let err = '';
    // The server's CPU is read at the client's markers around its timed work.
    const marks = {};
    let scanned = 0;
    child.stdout.on('data', (c) => {
      out += c;
      for (let nl = out.indexOf('\n', scanned); nl !== -1; nl = out.indexOf('\n', scanned)) {
        const line = out.slice(scanned, nl);
        scanned = nl + 1;
        if (line === TIMED_START) marks.start = server.cpuMs();
        else if (line === TIMED_END) marks.end = server.cpuMs();
      }
    });
    child.stderr.on('data', (c) => { err += c; });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutS * 1000);
    child.on('error', (e) => { err += String(e.message); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      currentChild = null;
      const wallS = Number(process.hrtime.bigint() - started) / 1e9;
      const serverMs1 = server.cpuMs();
      const busy1 = machineBusyMs(server.ticksPerSecond);
      const self = process.cpuUsage(self0);
      const lines = out.trim().split('\n').filter((l) => l.startsWith('{') && l !== TIMED_START && l !== TIMED_END);
      let r = null;
      try { r = lines.length ? JSON.parse(lines[lines.length - 1]) : null; } catch { r = null; }
      const base = { client: client.name, scenario: scenario.id, processWallS: wallS };
      if (marks.start != null && marks.end != null) {
        base.serverCpuMs = marks.end - marks.start;
        base.serverRequests = scenario.count;
      } else if (serverMs0 != null && serverMs1 != null) {
        // No markers (the client failed early): the server is idle between runs, so its
        // CPU over this child's life is this client's load, probe and warm-up included.
        base.serverCpuMs = serverMs1 - serverMs0;
        base.serverRequests = scenario.count + scenario.warmup + 1;
      }
      // The other-load estimate below is over the child's whole life.
      const serverLifeMs = serverMs0 != null && serverMs1 != null ? serverMs1 - serverMs0 : null;
      const stderrTail = err.trim().split('\n').slice(-3).join(' / ');
      if (timedOut) return resolve({ ...base, status: 'failed', reason: `killed after ${timeoutS} s` });
      if (r && r.unavailable) return resolve({ ...base, status: 'unavailable', reason: r.unavailable, scope: r.scope ?? 'client' });
      if (!r || r.error || code !== 0) {
        const why = r?.error ?? (signal ? `killed by ${signal}` : `exit code ${code}`);
        return resolve({ ...base, status: 'failed', reason: `${why}${stderrTail ? ': ' + stderrTail : ''}` });
      }
      if (r.failures > 0) {
        return resolve({ ...base, ...r, status: 'failed', reason: `${r.failures} of ${r.requests} requests failed (first: ${r.firstError})` });
      }
      // CPU used on this machine during the run by anything but the client, the server and
      // this harness (other jobs on a shared machine): it makes the run slower and noisier.
      if (busy0 != null && busy1 != null && serverLifeMs != null && r.processCpuMs != null) {
        const otherMs = busy1 - busy0 - serverLifeMs - r.processCpuMs - (self.user + self.system) / 1000;
        base.otherLoadPct = Math.max(0, (otherMs / (wallS * 1000)) * 100);
      }
      resolve({ ...base, ...r, status: 'ok' });
    });
  });
}

function derive(r) {
  if (r.status !== 'ok') return r;
  const cpuMs = r.cpuUserMs + r.cpuSysMs;
  const d = {
    ...r,
    rps: r.requests / r.seconds,
    cpuUsPerReq: (cpuMs * 1000) / r.requests,
    peakRssMiB: r.peakRssKb / 1024,
  };
  if (r.serverCpuMs != null) {
    d.serverCpuUsPerReq = (r.serverCpuMs * 1000) / r.serverRequests;
    d.serverLoadPct = (d.serverCpuUsPerReq * d.rps) / 1e4; // % of one core while timed
  }
  return d;
}

// ---------------------------------------------------------------- summary

function summarize(runs, clients, scenarios) {
  const summary = {};
  for (const s of scenarios) {
    summary[s.id] = {};
    for (const c of clients) {
      const mine = runs.filter((r) => r.client === c.name && r.scenario === s.id);
      if (mine.length === 0) continue;
      const ok = mine.filter((r) => r.status === 'ok');
      const bad = mine.find((r) => r.status !== 'ok');
      const e = { rounds: mine.length, okRounds: ok.length };
      if (bad) {
        e.status = bad.status;
        e.reason = bad.reason;
      } else {
        e.status = 'ok';
      }
      if (ok.length) {
        const col = (k) => ok.map((r) => r[k]).filter((v) => v != null);
        e.rps = median(col('rps'));
        e.rpsSpreadPct = spreadPct(col('rps'));
        e.cpuUsPerReq = median(col('cpuUsPerReq'));
        e.cpuSpreadPct = spreadPct(col('cpuUsPerReq'));
        e.peakRssMiB = median(col('peakRssMiB'));
        e.rssSpreadPct = spreadPct(col('peakRssMiB'));
        if (col('serverLoadPct').length) e.serverLoadPct = median(col('serverLoadPct'));
        if (col('serverCpuUsPerReq').length) e.serverCpuUsPerReq = median(col('serverCpuUsPerReq'));
        if (col('otherLoadPct').length) {
          e.otherLoadPct = median(col('otherLoadPct'));
          e.otherLoadMaxPct = Math.max(...col('otherLoadPct'));
        }
        if (s.latency) {
          e.p50Us = median(col('p50Ms')) * 1000;
          e.p50SpreadPct = spreadPct(col('p50Ms'));
          e.p99Us = median(col('p99Ms')) * 1000;
          e.p99SpreadPct = spreadPct(col('p99Ms'));
        }
        if (s.body === 'large') e.mibPerS = e.rps; // 1 MiB per request
      }
      summary[s.id][c.name] = e;
    }
    addRatios(summary[s.id], s);
  }
  return summary;
}

// The report's ratio columns, kept in the JSON too: requests/s (latency: p50) against
// the client's C counterpart and against undici.
function addRatios(entries, scenario) {
  const key = scenario.latency ? 'p50Us' : 'rps';
  const usable = (e) => e && e.status === 'ok' && e[key] != null && e[key] > 0;
  for (const [name, e] of Object.entries(entries)) {
    if (!usable(e)) continue;
    const rawC = C_COUNTERPART[name] ?? 'raw-c';
    e.ratios = { metric: key, rawC: { reference: rawC, ratio: null }, undici: { reference: 'undici', ratio: null } };
    if (usable(entries[rawC])) e.ratios.rawC.ratio = e[key] / entries[rawC][key];
    if (usable(entries.undici)) e.ratios.undici.ratio = e[key] / entries.undici[key];
  }
}

// Per-round ratio of a metric between two clients (same round, same scenario or not).
function roundRatios(runs, a, sa, b, sb, key) {
  const out = [];
  const rounds = new Set(runs.map((r) => r.round));
  for (const round of rounds) {
    const x = runs.find((r) => r.round === round && r.client === a && r.scenario === sa && r.status === 'ok');
    const y = runs.find((r) => r.round === round && r.client === b && r.scenario === sb && r.status === 'ok');
    if (x && y && y[key]) out.push(x[key] / y[key]);
  }
  return out;
}

function targetChecks(summary, runs) {
  const checks = [];
  const get = (s, c) => summary[s]?.[c];
  const add = (label, a, sa, b, sb, key, op, limit) => {
    const x = get(sa, a);
    const y = get(sb, b);
    const per = roundRatios(runs, a, sa, b, sb, key === 'peakRssMiB' ? 'peakRssMiB' : 'rps');
    const check = { label, client: a, scenario: sa, reference: b, referenceScenario: sb, metric: key, op, limit };
    if (!x || !y || x.status !== 'ok' || y.status !== 'ok' || x[key] == null || y[key] == null) {
      check.verdict = 'no data';
      const missing = !x ? `${a} did not run` : x.status !== 'ok' ? `${a} ${x.status}: ${x.reason}` : !y ? `${b} did not run` : `${b} ${y.status}: ${y.reason}`;
      check.why = missing;
    } else {
      check.ratio = x[key] / y[key];
      check.verdict = (op === '>=' ? check.ratio >= limit : check.ratio <= limit) ? 'met' : 'NOT met';
      check.rounds = per.length;
      // The issue asks for medians of at least 5 rounds; fewer give a verdict for show only.
      check.provisional = per.length < 5;
      if (per.length) {
        check.perRoundMin = Math.min(...per);
        check.perRoundMax = Math.max(...per);
      }
    }
    checks.push(check);
  };
  for (const cs of ['curl-sockets', 'curl-sockets-reuse']) {
    const c = C_COUNTERPART[cs];
    add(`s1 req/s vs ${c}`, cs, 's1-keepalive', c, 's1-keepalive', 'rps', '>=', 0.6);
    add('s1 req/s vs undici', cs, 's1-keepalive', 'undici', 's1-keepalive', 'rps', '>=', 1.3);
    add(`s2 with callbacks, req/s vs ${c} with C callbacks`, cs, 's2-new-conn-cb', c, 's2-new-conn-cb', 'rps', '>=', 0.7);
    // Also against the C client that holds back the handshake ACK as curl-sockets does.
    if (get('s2-new-conn-cb', `${c}-defer-ack`)) {
      add(`s2 with callbacks, req/s vs ${c}-defer-ack with C callbacks`, cs, 's2-new-conn-cb', `${c}-defer-ack`, 's2-new-conn-cb', 'rps', '>=', 0.7);
    }
    add('s2 JS callbacks cost (req/s with / without)', cs, 's2-new-conn-cb', cs, 's2-new-conn', 'rps', '>=', 0.85);
    add(`s3 throughput vs ${c}, each with its default BUFFERSIZE`, cs, 's3-1mib', c, 's3-1mib', 'rps', '>=', 0.9);
    for (const s of ['s1-keepalive', 's2-new-conn', 's2-new-conn-cb', 's3-1mib', 's4-latency']) {
      // undici has no socket callbacks: the callback scenario is held against its s2.
      const us = s === 's2-new-conn-cb' ? 's2-new-conn' : s;
      add(`${s} peak RSS vs undici`, cs, s, 'undici', us, 'peakRssMiB', '<=', 1.1);
    }
  }
  // s3 with both clients at the same receive buffer size (the s3-only clients).
  if (get('s3-1mib', 'raw-c-reuse-64k')) {
    add('s3 throughput, both at 64 KiB, vs raw-c-reuse-64k', 'curl-sockets-reuse', 's3-1mib', 'raw-c-reuse-64k', 's3-1mib', 'rps', '>=', 0.9);
    if (get('s3-1mib', 'curl-sockets-reuse-into')) {
      add('s3 throughput, both at 64 KiB, bodies into a reused buffer, vs raw-c-reuse-64k', 'curl-sockets-reuse-into', 's3-1mib', 'raw-c-reuse-64k', 's3-1mib', 'rps', '>=', 0.9);
    }
  }
  if (get('s3-1mib', 'curl-sockets-reuse-16k')) {
    add('s3 throughput, both at 16 KiB, vs raw-c-reuse', 'curl-sockets-reuse-16k', 's3-1mib', 'raw-c-reuse', 's3-1mib', 'rps', '>=', 0.9);
  }
  return checks;
}

// Warnings are printed where they arise and kept for the JSON.
const warnings = [];
function warn(line) {
  warnings.push(line);
  return line;
}

const clip = (text, n = 60) => (text.length > n ? text.slice(0, n - 1) + '…' : text);

function printReport(summary, checks, scenarios, clients, rounds) {
  const out = [];
  const problems = new Map(); // reason -> list of "client (scenario)"
  for (const s of scenarios) {
    const rows = [];
    const sum = summary[s.id];
    for (const c of clients) {
      const e = sum[c.name];
      if (!e) continue;
      let status = 'ok';
      if (e.status !== 'ok') {
        status = `${e.status}: ${clip(e.reason)}`;
        const list = problems.get(e.reason) ?? [];
        list.push(`${c.name} (${s.id})`);
        problems.set(e.reason, list);
      }
      const has = e.rps != null && e.status === 'ok';
      const pct = (v) => (v == null ? '—' : `${fmt(v, 0)}%`);
      const ratioC = fmtRatio(e.ratios?.rawC.ratio);
      const ratioU = fmtRatio(e.ratios?.undici.ratio);
      if (s.latency) {
        rows.push([c.name, has ? fmt(e.p50Us, 1) : '—', has ? fmt(e.p99Us, 1) : '—', has ? `${pct(e.p50SpreadPct)} / ${pct(e.p99SpreadPct)}` : '—',
          has ? fmt(e.cpuUsPerReq, 1) : '—', has ? fmt(e.peakRssMiB, 1) : '—', ratioC, ratioU, status]);
      } else {
        rows.push([c.name, has ? fmtInt(e.rps) : '—', has ? pct(e.rpsSpreadPct) : '—', has ? fmt(e.cpuUsPerReq, 1) : '—',
          has ? fmt(e.peakRssMiB, 1) : '—', has ? pct(e.serverLoadPct) : '—', ratioC, ratioU, status]);
      }
    }
    const others = Object.values(sum).filter((e) => e.otherLoadPct != null);
    out.push('');
    out.push(`${s.id}: ${s.count.toLocaleString('en-US')} × ${s.title}` +
      (others.length ? `  [other load: median ${fmt(median(others.map((e) => e.otherLoadPct)), 0)}%, max ${fmt(Math.max(...others.map((e) => e.otherLoadMaxPct)), 0)}% of a core]` : ''));
    if (s.latency) {
      out.push(table(['client', 'p50 µs', 'p99 µs', 'spread p50 / p99', 'CPU µs/req', 'peak RSS MiB', 'p50 ÷ raw C', 'p50 ÷ undici', 'status'], rows, [0, 8]));
    } else {
      out.push(table(['client', s.body === 'large' ? 'req/s (= MiB/s)' : 'req/s', 'spread', 'CPU µs/req', 'peak RSS MiB', 'server CPU', '÷ raw C', '÷ undici', 'status'], rows, [0, 8]));
    }
  }
  out.push('');
  out.push(`Medians of ${rounds} round(s). spread = (max - min) / median over the rounds (req/s; latency: p50 and p99).`);
  out.push('÷ raw C: curl-sockets-reuse and -16k are compared with raw-c-reuse (same handle strategy), curl-sockets-reuse-into with raw-c-reuse-64k (same buffer size), curl-sockets-rcvbuf with raw-c-rcvbuf, every other client with raw-c.');
  out.push('CPU µs/req = client user + system CPU over the timed work / requests (all threads of the process).');
  out.push('server CPU = the server process\'s CPU over the client\'s timed work / that work\'s wall time, in % of one core (near 100%: the server is the bottleneck).');
  out.push('other load = CPU used by other processes on this machine during a run, in % of one core (should be near 0).');
  const worst = Math.max(0, ...Object.values(summary).flatMap((x) => Object.values(x)).map((e) => e.otherLoadMaxPct ?? 0));
  if (worst > 20) {
    out.push(warn(`WARNING: other processes used up to ${fmt(worst, 0)}% of a core during some runs; the numbers are noisier than the machine allows. Rerun on a quiet machine.`));
  }
  if (problems.size) {
    out.push('');
    out.push('Not measured:');
    for (const [reason, where] of problems) out.push(`  ${where.join(', ')}:\n      ${reason}`);
  }
  out.push('');
  out.push('Targets (ratio of medians; [min..max] of the per-round ratios):');
  const rows = checks.map((c) => [
    c.client, c.label, `${c.op} ${c.limit}`,
    c.ratio != null ? `${c.ratio.toFixed(2)}${c.perRoundMin != null ? ` [${c.perRoundMin.toFixed(2)}..${c.perRoundMax.toFixed(2)}]` : ''}` : '—',
    c.verdict === 'no data' ? `no data (${clip(c.why, 50)})` : c.provisional ? `${c.verdict} (${c.rounds} round${c.rounds === 1 ? '' : 's'}: provisional)` : c.verdict,
  ]);
  out.push(table(['client', 'target', 'limit', 'ratio', 'verdict'], rows, [0, 1, 4]));
  console.log(out.join('\n'));
}

// ---------------------------------------------------------------- main

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let scenarios = makeScenarios(args.quick);
  let clients = CLIENTS.filter((c) => !c.optional);

  if (args.list) {
    console.log('clients:');
    for (const c of CLIENTS) console.log(`  ${c.name.padEnd(20)} ${c.desc}${c.optional ? ' (only with --only)' : ''}`);
    console.log('scenarios:');
    for (const s of scenarios) console.log(`  ${s.id.padEnd(20)} ${s.count} × ${s.title}`);
    return;
  }
  if (args.only) {
    const match = (name) => args.only.some((o) => nameMatches(o, name));
    const known = [...CLIENTS.map((c) => c.name), ...scenarios.map((s) => s.id)];
    for (const o of args.only) {
      if (!known.some((k) => nameMatches(o, k))) fatal(`--only: unknown client or scenario '${o}' (see --list)`);
    }
    const cs = CLIENTS.filter((c) => match(c.name));
    const ss = scenarios.filter((s) => match(s.id));
    if (cs.length) clients = cs;
    if (ss.length) scenarios = ss;
  }
  const rounds = args.rounds ?? (args.quick ? 1 : 5);
  if (rounds < 1) fatal('--rounds must be at least 1');
  const seed = args.seed ?? Math.floor(Math.random() * 2 ** 31);
  const rand = rng(seed);

  console.log(`curl-sockets benchmark: ${rounds} round(s)${args.quick ? ' (quick)' : ''}, seed ${seed}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}`);
  if (rounds < 5) console.log(warn('note: fewer than 5 rounds; the issue\'s ratios need medians of at least 5, so the verdicts are provisional.'));
  const tcp = tcpSettings();
  if (tcp.congestionControl) console.log(`TCP: congestion control ${tcp.congestionControl}, tcp_rmem ${tcp.tcpRmem}, rmem_max ${tcp.rmemMax}`);
  const load1 = os.loadavg()[0];
  console.log(`load average before the run: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  if (load1 > 0.5) console.log(warn('WARNING: the machine is busy (1-minute load average above 0.5); other jobs make the numbers noisy.'));

  // Children that fail to start are reported; those that cannot run are skipped.
  const unavailable = new Map(); // client name -> reason (whole client)
  const unavailableIn = new Map(); // `${client}|${scenario}` -> reason

  let rawBuild = null;
  if (clients.some((c) => c.native)) {
    const b = (rawBuild = buildRawClient());
    if (b.ok) console.log(`raw C client: ${b.cmd}\n  linked: ${b.libcurlSo || '(ldd found no libcurl?)'}`);
    else {
      console.log(`raw C client unavailable: ${b.error}`);
      for (const c of clients) if (c.native) unavailable.set(c.name, b.error);
    }
  }
  if (clients.some((c) => c.name.startsWith('curl-sockets')) && !existsSync(path.join(root, 'dist', 'index.js'))) {
    console.log('note: dist/index.js is missing (run `npm run build` / `npm run build:ts`); the curl-sockets clients will report unavailable.');
  }

  // Pinning: the server gets the last CPU, each client the others, so a client with
  // extra threads (GC, libuv) cannot take the server's core and runs are repeatable.
  let pin = null;
  const ncpu = os.cpus().length;
  if (args.pin) {
    if (ncpu < 2) console.log('not pinning: fewer than 2 CPUs');
    else if (sh('command -v taskset').status !== 0) console.log('not pinning: taskset not found (util-linux)');
    else pin = { server: String(ncpu - 1), clients: ncpu === 2 ? '0' : `0-${ncpu - 2}` };
  }
  let serverEnv = null;
  if (args.serverCc) {
    const shim = buildServerCcShim(args.serverCc);
    if (!shim.ok) fatal(`--server-cc: ${shim.error}`);
    serverEnv = shim.env;
  }
  let server;
  try {
    server = await startServer(args.server, pin?.server ?? null, serverEnv);
  } catch (err) {
    fatal(`the server did not start: ${err.message}${args.serverCc ? ` (with --server-cc ${args.serverCc}: is it in /proc/sys/net/ipv4/tcp_allowed_congestion_control?)` : ''}`);
  }
  let stopping = false;
  const stopAll = () => {
    if (currentChild) { try { currentChild.kill('SIGKILL'); } catch { /* gone */ } }
    server.stopSync();
  };
  process.on('exit', stopAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      console.error(`\n${sig}: stopping the server and the running client`);
      stopAll();
      process.exit(130);
    });
  }

  console.log(`server: ${server.description}`);
  console.log(`  (${server.note})`);
  if (args.serverCc) {
    const seen = listenerCongestionControl(server.origin);
    if (seen !== null && seen !== args.serverCc) {
      fatal(`--server-cc ${args.serverCc}: the server's listening socket uses ${seen}`);
    }
    console.log(`  the server's sockets use TCP congestion control ${args.serverCc} (--server-cc, ${seen ? 'checked with ss' : 'not checked: ss did not show it'}; the machine's default is ${tcp.congestionControl ?? 'unknown'})`);
  }
  console.log(pin ? `pinned with taskset: server on CPU ${pin.server}, each client on CPU ${pin.clients} (--no-pin to let the scheduler place them)` : 'not pinned: the scheduler places server and clients');
  console.log(`clients: ${clients.map((c) => c.name).join(', ')}`);
  console.log(`scenarios: ${scenarios.map((s) => s.id).join(', ')}`);

  // The runs of the scenarios of one group (s2 with and without callbacks) are
  // shuffled together, so a ratio between those scenarios (the callbacks' cost)
  // sees the same machine state that a ratio between clients does.
  const groups = [];
  for (const s of scenarios) {
    const group = s.group ? groups.find((g) => g.key === s.group) : undefined;
    if (group) group.scenarios.push(s);
    else groups.push({ key: s.group ?? s.id, scenarios: [s] });
  }

  const runs = [];
  const t0 = Date.now();
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const group of groups) {
        const pairs = group.scenarios.flatMap((s) => clients.filter((c) => (!s.callbacks || c.callbacks) && (!c.onlyIn || c.onlyIn.includes(s.id))).map((c) => [s, c]));
        for (const [s, c] of shuffle(pairs, rand)) {
          const key = `${c.name}|${s.id}`;
          const why = unavailable.get(c.name) ?? unavailableIn.get(key);
          if (why) {
            runs.push({ round, client: c.name, scenario: s.id, status: 'unavailable', reason: why, skipped: true });
            continue;
          }
          const r = derive({ round, ...(await runOne(c, s, server, args.timeout, pin?.clients ?? null)) });
          r.round = round;
          runs.push(r);
          const tag = `[round ${round}/${rounds}] ${s.id.padEnd(15)} ${c.name.padEnd(19)}`;
          if (r.status === 'ok') {
            const lat = s.latency ? `  p50 ${fmt(r.p50Ms * 1000, 1)} µs  p99 ${fmt(r.p99Ms * 1000, 1)} µs` : '';
            const srv = (r.serverLoadPct != null ? `  server ${fmt(r.serverLoadPct, 0)}%` : '') +
              (r.otherLoadPct != null ? `  other ${fmt(r.otherLoadPct, 0)}%` : '');
            console.log(`${tag} ${fmtInt(r.rps).padStart(8)} req/s  ${fmt(r.cpuUsPerReq, 1).padStart(6)} µs CPU/req  ${fmt(r.peakRssMiB, 1).padStart(6)} MiB${srv}${lat}`);
          } else {
            console.log(`${tag} ${r.status}: ${r.reason}`);
            if (r.status === 'unavailable') {
              if (r.scope === 'scenario') unavailableIn.set(key, r.reason);
              else unavailable.set(c.name, r.reason);
            }
          }
        }
      }
    }
  } finally {
    await server.stop();
  }
  const elapsed = (Date.now() - t0) / 1000;

  // libcurl used by curl-sockets and by the C client should be the same library.
  const versions = new Map();
  for (const r of runs) if (r.info?.libcurl) versions.set(r.client, r.info.libcurl);
  const distinct = new Set(versions.values());
  if (distinct.size > 1) console.log(warn(`WARNING: clients report different libcurl versions: ${[...versions].map(([c, v]) => `${c} ${v}`).join(', ')}`));

  const summary = summarize(runs, clients, scenarios);
  const checks = targetChecks(summary, runs);
  printReport(summary, checks, scenarios, clients, rounds);
  console.log(`\n${runs.filter((r) => !r.skipped).length} client runs in ${elapsed.toFixed(0)} s.`);

  const outFile = args.out ?? path.join(here, 'results', 'latest.json');
  mkdirSync(path.dirname(outFile), { recursive: true });
  const result = {
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, kernel: os.release(), totalMemMiB: Math.round(os.totalmem() / 2 ** 20), tcp },
    node: process.version,
    libcurl: Object.fromEntries(versions),
    server: { kind: server.kind, description: server.description, note: server.note },
    rawClientBuild: rawBuild,
    warnings,
    options: { rounds, quick: args.quick, only: args.only, seed, pin, serverCc: args.serverCc, elapsedS: elapsed },
    clients: clients.map(({ name, desc }) => ({ name, desc })),
    scenarios,
    summary,
    targets: checks,
    runs,
  };
  writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
  console.log(`results: ${path.relative(process.cwd(), outFile) || outFile}`);
  const notOk = runs.filter((r) => r.status !== 'ok');
  if (args.strict && notOk.length) {
    console.log(`--strict: ${notOk.length} client run(s) failed or were unavailable`);
    process.exitCode = 1;
  }
}

main().catch((err) => {
  console.error(err?.stack ?? err);
  process.exitCode = 1;
});

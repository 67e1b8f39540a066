// Shared driver for the JavaScript benchmark clients.
//
// A client module calls `runClient(load)`. `load(options)` returns
//   { worker(index) => (async () => ({ status, bytes })), close?(), info? }
// where each worker function performs one GET and reports the status code and the
// number of body bytes it holds in memory. This file does everything else the same
// way for every JavaScript client: argument parsing, the probe request, warm-up,
// the timed phase, the checks, CPU / RSS / latency accounting, and the one JSON line
// on stdout that bench/run.mjs reads.

import { readFileSync } from 'node:fs';

export function parseOptions(argv = process.argv.slice(2)) {
  const o = {
    url: '',
    count: 1000,
    concurrency: 1,
    expectBytes: -1,
    forbidReuse: false,
    callbacks: false,
    latency: false,
    warmup: 0,
    mode: 'new-easy',
    rcvbuf: 0,
    buffersize: 0,
    into: false,
    probeTimeoutMs: 10000,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value after ${a}`);
      return argv[++i];
    };
    switch (a) {
      case '--url': o.url = next(); break;
      case '--count': o.count = Number(next()); break;
      case '--concurrency': o.concurrency = Number(next()); break;
      case '--expect-bytes': o.expectBytes = Number(next()); break;
      case '--warmup': o.warmup = Number(next()); break;
      case '--mode': o.mode = next(); break;
      case '--rcvbuf': o.rcvbuf = Number(next()); break;
      case '--buffersize': o.buffersize = Number(next()); break;
      case '--probe-timeout-ms': o.probeTimeoutMs = Number(next()); break;
      case '--forbid-reuse': o.forbidReuse = true; break;
      case '--callbacks': o.callbacks = true; break;
      case '--into': o.into = true; break;
      case '--latency': o.latency = true; break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!o.url) throw new Error('--url is required');
  if (o.latency) o.concurrency = 1;
  return o;
}

export function peakRssKb() {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch { /* not Linux */ }
  return process.resourceUsage().maxRSS;
}

// Nearest-rank percentile of an ascending array (same rule as raw-multi.c).
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p * sorted.length) / 100); // p is an integer: exact
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

// Marker lines around the timed work, so that the harness can read the server's CPU
// over exactly that span (they are written outside the client's own measurement).
const TIMED_START = { timed: 'start' };
const TIMED_END = { timed: 'end' };

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function message(err) {
  if (err == null) return String(err);
  let s = err.code ? `${err.code}: ${err.message}` : String(err.message ?? err);
  if (err.cause) s += ` (cause: ${err.cause.code ? err.cause.code + ': ' : ''}${err.cause.message ?? err.cause})`;
  return s.split('\n')[0];
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export async function runClient(load) {
  let opts;
  try {
    opts = parseOptions();
  } catch (err) {
    emit({ error: `bad arguments: ${err.message}` });
    process.exit(2);
  }

  let client;
  try {
    client = await load(opts);
  } catch (err) {
    emit({ unavailable: message(err), scope: 'client' });
    process.exit(0);
  }

  const workers = [];
  try {
    for (let i = 0; i < opts.concurrency; i++) workers.push(client.worker(i));
  } catch (err) {
    emit({ unavailable: `setting up workers failed: ${message(err)}`, scope: 'scenario' });
    process.exit(0);
  }

  const state = { failures: 0, firstError: null };
  const check = (r) => {
    if (r.status !== 200) throw new Error(`status ${r.status}`);
    if (opts.expectBytes >= 0 && r.bytes !== opts.expectBytes) {
      throw new Error(`body of ${r.bytes} bytes, expected ${opts.expectBytes}`);
    }
  };
  const fail = (err) => {
    state.failures++;
    if (state.firstError === null) state.firstError = message(err);
  };

  // Probe: one request on its own, with a deadline, so a client that loads but cannot
  // do a single request is reported as unavailable instead of hanging the harness.
  try {
    const r = await withTimeout(workers[0](), opts.probeTimeoutMs, 'probe request');
    check(r);
  } catch (err) {
    emit({ unavailable: `probe request failed: ${message(err)}`, scope: 'scenario' });
    process.exit(0);
  }

  // Concurrency: each worker takes the next request number until `n` have been started.
  const phase = async (n) => {
    let started = 0;
    const loop = async (w) => {
      while (started < n) {
        started++;
        // Awaited here rather than in a helper of the harness: each async layer
        // costs a promise and a resumption per request, counted as client CPU.
        try {
          check(await w());
        } catch (err) {
          fail(err);
        }
      }
    };
    await Promise.all(workers.map(loop));
  };

  let latencies = null;
  let seconds;
  let cpu;
  if (opts.latency) {
    const w = workers[0];
    for (let i = 0; i < opts.warmup; i++) {
      try {
        check(await w());
      } catch (err) {
        fail(err);
      }
    }
    state.failures = 0;
    state.firstError = null;
    latencies = new Float64Array(opts.count);
    emit(TIMED_START);
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < opts.count; i++) {
      const s = process.hrtime.bigint();
      try {
        check(await w());
      } catch (err) {
        fail(err);
      }
      latencies[i] = Number(process.hrtime.bigint() - s) / 1e6;
    }
    seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    cpu = process.cpuUsage(cpu0);
    emit(TIMED_END);
  } else {
    await phase(opts.warmup);
    state.failures = 0;
    state.firstError = null;
    emit(TIMED_START);
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await phase(opts.count);
    seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    cpu = process.cpuUsage(cpu0);
    emit(TIMED_END);
  }
  const rss = peakRssKb();
  const whole = process.cpuUsage();

  const out = {
    requests: opts.count,
    failures: state.failures,
    seconds,
    cpuUserMs: cpu.user / 1000,
    cpuSysMs: cpu.system / 1000,
    peakRssKb: rss,
    processCpuMs: (whole.user + whole.system) / 1000, // whole process so far, for the harness's load check
  };
  if (state.firstError) out.firstError = state.firstError;
  if (latencies) {
    latencies.sort();
    out.p50Ms = percentile(latencies, 50);
    out.p99Ms = percentile(latencies, 99);
  }
  if (client.info) out.info = client.info;
  emit(out);

  try {
    if (client.close) await withTimeout(Promise.resolve(client.close()), 5000, 'close');
  } catch { /* the measurement is already out */ }
  process.exit(0);
}

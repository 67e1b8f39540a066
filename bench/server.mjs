// The benchmark server: nginx when it is installed (our own config in a temp dir, our
// own free port on 127.0.0.1, never the system service), otherwise a Node http server
// in a child process (bench/node-server.mjs).
//
// startServer() resolves to
//   { kind, description, origin, small: {path, bytes}, large: {path, bytes},
//     cpuMs(): number | null,  // CPU time (ms) of the serving process
//     ticksPerSecond, stop(): Promise<void>, stopSync(): void }

import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, chmodSync, accessSync, constants } from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

const SMALL_BODY = Buffer.from('hello world\n');
const LARGE_BYTES = 1024 * 1024;
// Extra listening ports for the new-connection scenarios: each such run gets the
// next one in turn (see originFor in run.mjs), so a port comes back only after
// this many runs, when the TIME_WAIT sockets of its last run are seconds old.
const NEW_CONN_PORTS = 16;

const originOf = (port) => `http://127.0.0.1:${port}`;

export function findNginx() {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const d of [...dirs, '/usr/sbin', '/usr/local/sbin']) {
    const p = path.join(d, 'nginx');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return null;
}

// `count` distinct free ports on 127.0.0.1 (all held open until every one is known).
async function freePorts(count) {
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      servers.push(await new Promise((resolve, reject) => {
        const s = net.createServer();
        s.unref();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => resolve(s));
      }));
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

function get(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let n = 0;
      res.on('data', (c) => { n += c.length; });
      res.on('end', () => resolve({ status: res.statusCode, bytes: n }));
    });
    req.on('error', reject);
    req.setTimeout(2000, () => req.destroy(new Error('timeout')));
  });
}

// Resolves once every origin serves the small file.
async function waitReady(origins, child, what) {
  const deadline = Date.now() + 10_000;
  let last;
  const pending = [...origins];
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before it served a request`);
    }
    try {
      const r = await get(pending[0] + '/small.txt');
      if (r.status === 200 && r.bytes === SMALL_BODY.length) {
        pending.shift();
        if (pending.length === 0) return;
        continue;
      }
      last = new Error(`${pending[0]}: status ${r.status}, ${r.bytes} bytes`);
    } catch (err) {
      last = new Error(`${pending[0]}: ${err.message}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} not ready after 10 s: ${last?.message}`);
}

function readTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime
  } catch {
    return null;
  }
}

// CPU time of a process in ms: the scheduler's nanosecond count summed over its threads
// (/proc/PID/task/*/schedstat), else clock ticks, which at 10 ms are coarse for a timed
// phase of a fraction of a second.
function readCpuMs(pid, tps) {
  let tids = [];
  try { tids = readdirSync(`/proc/${pid}/task`); } catch { /* gone */ }
  if (tids.length && readSchedNs(pid, pid) !== null) {
    let ns = 0;
    for (const tid of tids) ns += readSchedNs(pid, tid) ?? 0; // a thread may have just exited
    return ns / 1e6;
  }
  const t = readTicks(pid);
  return t == null ? null : (t * 1000) / tps;
}

function readSchedNs(pid, tid) {
  try {
    const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    return Number.isFinite(ns) ? ns : null;
  } catch {
    return null;
  }
}

function ticksPerSecond() {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function waitExit(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      try { child.kill('SIGKILL'); } catch { /* gone */ }
      resolve();
    }, ms);
    child.once('exit', () => { clearTimeout(t); resolve(); });
  });
}

// With `cpus` (e.g. '1'), the server is started under `taskset -c cpus` (its workers
// inherit the affinity).
// `env` adds variables to the server's environment (null: none).
function spawnPinned(cpus, cmd, args, options, env) {
  const withEnv = env ? { ...options, env: { ...process.env, ...env } } : options;
  if (!cpus) return spawn(cmd, args, withEnv);
  return spawn('taskset', ['-c', cpus, cmd, ...args], withEnv);
}

const DIR_PREFIX = 'curl-sockets-bench-';

// A harness killed outright leaves its temp dir behind (its nginx is stopped by the
// watchdog below). Such a dir is removed by the next run once its nginx is gone and
// it is a minute old (a dir that young may belong to a run that is starting).
function removeStaleDirs() {
  let names = [];
  try { names = readdirSync(os.tmpdir()).filter((n) => n.startsWith(DIR_PREFIX)); } catch { return; }
  for (const name of names) {
    const dir = path.join(os.tmpdir(), name);
    try {
      if (Date.now() - statSync(dir).mtimeMs < 60_000) continue;
      let pid = 0;
      try { pid = Number(readFileSync(path.join(dir, 'nginx.pid'), 'utf8').trim()); } catch { /* none */ }
      if (pid > 0) {
        try { process.kill(pid, 0); continue; } catch { /* not running */ }
      }
      rmSync(dir, { recursive: true, force: true });
    } catch { /* another run's, or gone */ }
  }
}

async function startNginx(nginx, cpus, env) {
  removeStaleDirs();
  const dir = mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
  // nginx's worker runs as an unprivileged user when started as root: let it read.
  chmodSync(dir, 0o755);
  const www = path.join(dir, 'www');
  mkdirSync(www, { mode: 0o755 });
  mkdirSync(path.join(dir, 'tmp'), { mode: 0o755 });
  writeFileSync(path.join(www, 'small.txt'), SMALL_BODY, { mode: 0o644 });
  const large = Buffer.alloc(LARGE_BYTES);
  for (let i = 0; i < large.length; i++) large[i] = i & 0xff;
  writeFileSync(path.join(www, '1mib.bin'), large, { mode: 0o644 });

  const [port, ...newConnPorts] = await freePorts(1 + NEW_CONN_PORTS);
  const listens = [port, ...newConnPorts].map((p) => `    listen 127.0.0.1:${p} backlog=4096;`).join('\n');
  const t = path.join(dir, 'tmp');
  const conf = `# generated by bench/server.mjs
daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_rlimit_nofile 16384;
events {
  worker_connections 8192;
}
http {
  access_log off;
  log_not_found off;
  server_tokens off;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  sendfile on;
  tcp_nodelay on;
  open_file_cache max=16 inactive=600s;
  open_file_cache_valid 600s;
  client_body_temp_path ${t}/body;
  proxy_temp_path ${t}/proxy;
  fastcgi_temp_path ${t}/fastcgi;
  uwsgi_temp_path ${t}/uwsgi;
  scgi_temp_path ${t}/scgi;
  types {
    text/plain txt;
    application/octet-stream bin;
  }
  default_type application/octet-stream;
  server {
${listens}
    root ${www};
    location / { }
  }
}
`;
  const confPath = path.join(dir, 'nginx.conf');
  writeFileSync(confPath, conf);

  // `nginx -v` prints its version on stderr.
  const v = spawnSync(nginx, ['-v'], { encoding: 'utf8' });
  const version = `${v.stderr ?? ''}${v.stdout ?? ''}`.trim();

  // nginx runs under a small shell that stops it once the shell's stdin (a pipe from
  // this process) closes: the harness closes it to stop nginx, and if the harness is
  // killed outright (SIGKILL runs no exit handler) the kernel closes it, so nginx is
  // not left running. The shell exits with nginx's status.
  const watchdog = 'exec 3<&0; "$0" "$@" </dev/null & pid=$!; ' +
    '{ read _ <&3; kill -TERM $pid 2>/dev/null; } & reader=$!; ' +
    'wait $pid; status=$?; kill $reader 2>/dev/null; exit $status';
  const child = spawnPinned(cpus, 'sh', ['-c', watchdog, nginx, '-p', dir + '/', '-c', confPath, '-e', path.join(dir, 'error.log')], {
    stdio: ['pipe', 'ignore', 'pipe'],
  }, env);
  child.stdin.on('error', () => { /* the shell is gone */ });
  const masterPid = () => {
    try {
      return Number(readFileSync(path.join(dir, 'nginx.pid'), 'utf8').trim()) || null;
    } catch {
      return null;
    }
  };
  const signalMaster = (sig) => {
    const pid = masterPid();
    if (pid) try { process.kill(pid, sig); } catch { /* gone */ }
  };
  let stderr = '';
  child.stderr.on('data', (c) => { stderr += c; });
  const origin = originOf(port);
  const newConnOrigins = newConnPorts.map(originOf);
  const cleanupDir = () => rmSync(dir, { recursive: true, force: true });
  try {
    await waitReady([origin, ...newConnOrigins], child, 'nginx');
  } catch (err) {
    let log = '';
    try { log = readFileSync(path.join(dir, 'error.log'), 'utf8'); } catch { /* none */ }
    signalMaster('SIGKILL');
    child.stdin.end();
    await waitExit(child, 3000);
    cleanupDir();
    throw new Error(`${err.message}\n${stderr}${log}`.trim());
  }
  // The CPU measured is the worker's: the child of the master, whose pid nginx wrote.
  let worker = null;
  for (let i = 0; i < 50 && worker === null; i++) {
    const master = masterPid();
    const kids = master ? childPids(master) : [];
    if (kids.length) worker = kids[0];
    else await new Promise((r) => setTimeout(r, 20));
  }
  const cpuPid = worker ?? masterPid() ?? child.pid;
  const tps = ticksPerSecond();
  return {
    kind: 'nginx',
    description: `${version.replace(/^nginx version:\s*/, '') || 'nginx'} (${nginx}), 1 worker, access_log off, keep-alive 60 s, on ${origin}`,
    origin,
    newConnOrigins,
    pid: child.pid,
    cpuPid,
    small: { path: '/small.txt', bytes: SMALL_BODY.length },
    large: { path: '/1mib.bin', bytes: LARGE_BYTES },
    cpuMs: () => readCpuMs(cpuPid, tps),
    ticksPerSecond: tps,
    stop: async () => {
      signalMaster('SIGTERM');
      child.stdin.end();
      await waitExit(child, 3000);
      cleanupDir();
    },
    stopSync: () => {
      signalMaster('SIGTERM');
      try { child.stdin.destroy(); } catch { /* gone */ }
      try { cleanupDir(); } catch { /* best effort */ }
    },
  };
}

async function startNodeServer(cpus, env) {
  const [port, ...newConnPorts] = await freePorts(1 + NEW_CONN_PORTS);
  const child = spawnPinned(cpus, process.execPath, [path.join(here, 'node-server.mjs'), String(port), ...newConnPorts.map(String)], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  }, env);
  const origin = originOf(port);
  const newConnOrigins = newConnPorts.map(originOf);
  const tps = ticksPerSecond();
  try {
    await waitReady([origin, ...newConnOrigins], child, 'Node server');
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    kind: 'node',
    description: `Node ${process.version} http server in a child process (bench/node-server.mjs), keep-alive 60 s, on ${origin}`,
    origin,
    newConnOrigins,
    pid: child.pid,
    cpuPid: child.pid,
    small: { path: '/small.txt', bytes: SMALL_BODY.length },
    large: { path: '/1mib.bin', bytes: LARGE_BYTES },
    cpuMs: () => readCpuMs(child.pid, tps),
    ticksPerSecond: tps,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await waitExit(child, 3000);
    },
    stopSync: () => {
      try { if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM'); } catch { /* gone */ }
    },
  };
}

// kind: 'auto' (nginx if installed, else Node), 'nginx' or 'node'; cpus: a taskset CPU
// list for the server, or null; env: variables added to the server's environment, or
// null. Resolves to the server plus `note`, a sentence saying
// why this server was chosen.
export async function startServer(kind = 'auto', cpus = null, env = null) {
  if (kind === 'node') {
    const s = await startNodeServer(cpus, env);
    return { ...s, note: 'Node server chosen with --server node' };
  }
  const nginx = findNginx();
  if (!nginx) {
    if (kind === 'nginx') throw new Error('--server nginx: nginx is not installed (apt-get install nginx)');
    const s = await startNodeServer(cpus, env);
    return { ...s, note: 'nginx is not installed, so a Node http server is used (apt-get install nginx for the reference setup)' };
  }
  // The free ports are closed again before nginx binds them, so another process can
  // take one in between: nginx then fails to start, and is tried again on new ports.
  let lastError;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      const s = await startNginx(nginx, cpus, env);
      return { ...s, note: `nginx found, so nginx is used${attempt > 1 ? ` (started at attempt ${attempt})` : ''}` };
    } catch (err) {
      lastError = err;
    }
  }
  if (kind === 'nginx') throw lastError;
  const s = await startNodeServer(cpus, env);
  return { ...s, note: `nginx did not start in 3 attempts (${lastError.message.split('\n')[0]}), so a Node http server is used` };
}


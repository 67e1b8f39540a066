// The benchmark server: nginx when it is installed (our own config in a temp dir, our
// own free port on 127.0.0.1, never the system service), otherwise a Node http server
// in a child process (bench/node-server.mjs).
//
// startServer() resolves to
//   { kind, description, origin, small: {path, bytes}, large: {path, bytes},
//     cpuTicks(): number | null,  // CPU (user+sys, clock ticks) of the serving process
//     ticksPerSecond, stop(): Promise<void>, stopSync(): void }

import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, readFileSync, rmSync, chmodSync, accessSync, constants } from 'node:fs';
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
function spawnPinned(cpus, cmd, args, options) {
  if (!cpus) return spawn(cmd, args, options);
  return spawn('taskset', ['-c', cpus, cmd, ...args], options);
}

async function startNginx(nginx, cpus) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'curl-sockets-bench-'));
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

  const child = spawnPinned(cpus, nginx, ['-p', dir + '/', '-c', confPath, '-e', path.join(dir, 'error.log')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
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
    child.kill('SIGKILL');
    cleanupDir();
    throw new Error(`${err.message}\n${stderr}${log}`.trim());
  }
  let worker = null;
  for (let i = 0; i < 50 && worker === null; i++) {
    const kids = childPids(child.pid);
    if (kids.length) worker = kids[0];
    else await new Promise((r) => setTimeout(r, 20));
  }
  const cpuPid = worker ?? child.pid;
  return {
    kind: 'nginx',
    description: `${version.replace(/^nginx version:\s*/, '') || 'nginx'} (${nginx}), 1 worker, access_log off, keep-alive 60 s, on ${origin}`,
    origin,
    newConnOrigins,
    pid: child.pid,
    cpuPid,
    small: { path: '/small.txt', bytes: SMALL_BODY.length },
    large: { path: '/1mib.bin', bytes: LARGE_BYTES },
    cpuTicks: () => readTicks(cpuPid),
    ticksPerSecond: ticksPerSecond(),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await waitExit(child, 3000);
      cleanupDir();
    },
    stopSync: () => {
      try { if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM'); } catch { /* gone */ }
      try { cleanupDir(); } catch { /* best effort */ }
    },
  };
}

async function startNodeServer(cpus) {
  const [port, ...newConnPorts] = await freePorts(1 + NEW_CONN_PORTS);
  const child = spawnPinned(cpus, process.execPath, [path.join(here, 'node-server.mjs'), String(port), ...newConnPorts.map(String)], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const origin = originOf(port);
  const newConnOrigins = newConnPorts.map(originOf);
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
    cpuTicks: () => readTicks(child.pid),
    ticksPerSecond: ticksPerSecond(),
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
// list for the server, or null. Resolves to the server plus `note`, a sentence saying
// why this server was chosen.
export async function startServer(kind = 'auto', cpus = null) {
  if (kind === 'node') {
    const s = await startNodeServer(cpus);
    return { ...s, note: 'Node server chosen with --server node' };
  }
  const nginx = findNginx();
  if (!nginx) {
    if (kind === 'nginx') throw new Error('--server nginx: nginx is not installed (apt-get install nginx)');
    const s = await startNodeServer(cpus);
    return { ...s, note: 'nginx is not installed, so a Node http server is used (apt-get install nginx for the reference setup)' };
  }
  try {
    const s = await startNginx(nginx, cpus);
    return { ...s, note: 'nginx found, so nginx is used' };
  } catch (err) {
    if (kind === 'nginx') throw err;
    const s = await startNodeServer(cpus);
    return { ...s, note: `nginx did not start (${err.message.split('\n')[0]}), so a Node http server is used` };
  }
}


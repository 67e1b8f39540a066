// The command line: exit status is libcurl's CURLcode; IpPolicy flags; -o; --trace-sockets.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type TestServer } from './helpers/servers';

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('curl-sockets command line', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startHttpServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it('prints the body and exits 0', async () => {
    const r = await run([`${server.url}/hello`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('hello world\n');
  });

  it('sends -X, -H and -d, and follows -L', async () => {
    const r = await run(['-X', 'PUT', '-H', 'x-test: 1', '-d', 'a=1', '-d', 'b=2', `${server.url}/echo`]);
    expect(r.code).toBe(0);
    const echo = JSON.parse(r.stdout) as { method: string; headers: Record<string, string>; body: string };
    expect(echo.method).toBe('PUT');
    expect(echo.headers['x-test']).toBe('1');
    expect(echo.body).toBe('a=1&b=2');
    const followed = await run(['-L', `${server.url}/redirect/2`]);
    expect(followed.stdout).toBe('hello world\n');
  });

  it('writes -o FILE', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-'));
    const file = path.join(dir, 'out.bin');
    const r = await run(['-o', file, `${server.url}/bytes?n=100000`]);
    expect(r.code).toBe(0);
    expect(fs.statSync(file).size).toBe(100000);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('exits with the CURLcode: 7 for a refused connection, 28 for --max-time', async () => {
    const refused = await run(['http://127.0.0.1:1/']);
    expect(refused.code).toBe(7);
    const slow = await run(['--max-time', '0.2', `${server.url}/slow?ms=3000`]);
    expect(slow.code).toBe(28);
    // Under a millisecond is still a limit (TIMEOUT_MS 0 would mean none).
    const tiny = await run(['--max-time', '0.0004', `${server.url}/slow?ms=3000`]);
    expect(tiny.code).toBe(28);
  });

  it('--deny-private blocks loopback before connecting; --allow lets it through', async () => {
    const before = server.connections;
    const denied = await run(['--deny-private', `${server.url}/hello`]);
    expect(denied.code).toBe(7);
    expect(denied.stderr).toMatch(/blocked: loopback/);
    expect(server.connections).toBe(before);
    const allowed = await run(['--allow', '127.0.0.1', `${server.url}/hello`]);
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toBe('hello world\n');
  });

  it('--trace-sockets reports every socket event on stderr', async () => {
    const r = await run(['--trace-sockets', `${server.url}/hello`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/opensocket 127\.0\.0\.1:\d+ -> fd (\d+)/);
    const fd = /-> fd (\d+)/.exec(r.stderr)?.[1];
    expect(r.stderr).toContain(`sockopt fd ${fd}`);
    expect(r.stderr).toContain(`socket fd ${fd} REMOVE`);
    expect(r.stderr).toContain(`closesocket fd ${fd}`);
    expect(r.stderr).toMatch(/timer -?\d+ ms/);
  });

  it('bad usage exits 2 with the usage text', async () => {
    const r = await run(['--nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Usage: curl-sockets/);
    for (const seconds of ['0', '-1', 'soon', '1e300']) {
      const bad = await run(['--max-time', seconds, `${server.url}/hello`]);
      expect(bad.code, `--max-time ${seconds}`).toBe(2);
    }
  });
});

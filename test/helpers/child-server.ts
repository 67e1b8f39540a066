// Servers that run in a child process, so that they keep answering while a
// test blocks its own thread (sleepSync) inside a libcurl callback.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

/** Blocks the thread (and so the event loop) for `ms`. */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Starts test/children/<file>, which prints "PORT <n>" once listening and
 * exits when its stdin closes (`child.stdin.end()`); resolves with the port.
 */
export function startChildServer(file: string): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, [path.resolve(__dirname, '..', 'children', file)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${file} exited (${code}) before listening`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve({ port: Number(m[1]), child });
    });
  });
}

/**
 * File descriptor inspection through /proc (Linux only), for tests that
 * check for fd leaks and that sockets are not inherited by child processes.
 *
 * All functions are synchronous and process-wide: under vitest's 'forks' pool
 * each test file runs in its own process, so /proc/self is that worker.
 * Note that other threads (libuv's pool, libcurl's resolver threads) may open
 * and close fds concurrently; compare counts after the loop has settled.
 */
import * as fs from 'node:fs';

/** O_CLOEXEC as it appears in the octal `flags:` line of /proc/<pid>/fdinfo/<fd>. */
export const O_CLOEXEC = 0o2000000;
/** O_NONBLOCK, likewise. */
export const O_NONBLOCK = 0o4000;

function readFdDir(dir: string): Map<number, string> {
  const out = new Map<number, string>();
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const fd = Number(name);
    if (!Number.isInteger(fd)) continue;
    try {
      out.set(fd, fs.readlinkSync(`${dir}/${name}`));
    } catch {
      // Gone already: e.g. the descriptor readdirSync itself used for `dir`.
    }
  }
  return out;
}

/** fd -> readlink target (e.g. 'socket:[123]', '/dev/null', 'pipe:[45]', 'anon_inode:[eventpoll]'). */
export function listFds(): Map<number, string> {
  return readFdDir('/proc/self/fd');
}

/**
 * Number of open fds of this process (the entries of /proc/self/fd, not
 * counting the transient descriptor used to read that directory).
 */
export function openFdCount(): number {
  return listFds().size;
}

/** Like listFds() for another process (same user), e.g. a spawned child. Empty if it is gone. */
export function fdsOfPid(pid: number): Map<number, string> {
  return readFdDir(`/proc/${pid}/fd`);
}

/** Inode number from a 'socket:[N]' link target, or undefined for anything else. */
export function parseSocketInode(target: string): number | undefined {
  const m = /^socket:\[(\d+)\]$/.exec(target);
  return m === null ? undefined : Number(m[1]);
}

/** Socket inode behind one of this process's fds, or undefined if the fd is closed or not a socket. */
export function socketInode(fd: number): number | undefined {
  let target: string;
  try {
    target = fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
  return parseSocketInode(target);
}

/** fd -> socket inode for every socket fd of this process. */
export function listSocketFds(): Map<number, number> {
  return socketFdsOf(listFds());
}

/** Set of socket inodes held by a process (pid omitted: this process). */
export function socketInodesOfPid(pid?: number): Set<number> {
  const fds = pid === undefined ? listFds() : fdsOfPid(pid);
  return new Set(socketFdsOf(fds).values());
}

function socketFdsOf(fds: Map<number, string>): Map<number, number> {
  const out = new Map<number, number>();
  for (const [fd, target] of fds) {
    const inode = parseSocketInode(target);
    if (inode !== undefined) out.set(fd, inode);
  }
  return out;
}

/**
 * open(2) flags of an fd from /proc/<pid>/fdinfo/<fd> (pid omitted: this
 * process), or undefined if the fd is not open.
 */
export function fdFlags(fd: number, pid?: number): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid ?? 'self'}/fdinfo/${fd}`, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^flags:\s*([0-7]+)\s*$/m.exec(text);
  return m === null ? undefined : parseInt(m[1] as string, 8);
}

/** Whether an fd of this process has FD_CLOEXEC set (undefined if the fd is not open). */
export function isCloexec(fd: number): boolean | undefined {
  const flags = fdFlags(fd);
  return flags === undefined ? undefined : (flags & O_CLOEXEC) !== 0;
}

// Socket helpers. Failures are Node-style system errors (code, errno, syscall).
import * as net from 'node:net';
import * as tls from 'node:tls';

import { native } from './native';
import { describe } from './options';
import type { CurlSockaddr } from './types';

/** socket(family, socktype | SOCK_CLOEXEC, protocol) for an address OPENSOCKETFUNCTION was given. */
export function createSocket(address: Pick<CurlSockaddr, 'family' | 'socktype' | 'protocol'>): number {
  if (address === null || typeof address !== 'object') throw new TypeError(`createSocket takes a CurlSockaddr, not ${describe(address)}`);
  return native.createSocket(address.family, address.socktype, address.protocol);
}

/**
 * close(fd). Inside CLOSESOCKETFUNCTION this is how the callback closes the
 * fd it was given. Refuses an fd libcurl still owns (it would be closed twice).
 */
export function closeSocket(fd: number): void {
  native.closeSocket(fd);
}

/** setsockopt(fd, level, name, value); a boolean is 1 or 0, a Buffer is passed as it is. */
export function setSocketOption(fd: number, level: number, name: number, value: number | boolean | Buffer): void {
  if (typeof value !== 'number' && typeof value !== 'boolean' && !Buffer.isBuffer(value)) {
    throw new TypeError(`setSocketOption takes a number, boolean or Buffer value, not ${describe(value)}`);
  }
  native.setSocketOption(fd, level, name, value);
}

/** getsockopt(fd, level, name) as an integer. */
export function getSocketOption(fd: number, level: number, name: number): number {
  return native.getSocketOption(fd, level, name);
}

interface HandleWithFd {
  fd?: number;
}

/**
 * Takes over a connected TCP or Unix-domain net.Socket: duplicates its fd
 * (close-on-exec), destroys the net.Socket (closing one of two fds sends no
 * FIN) and returns the duplicate, which the caller owns.
 */
export function adoptSocket(socket: net.Socket): number {
  if (!(socket instanceof net.Socket)) throw new TypeError(`adoptSocket takes a net.Socket, not ${describe(socket)}`);
  if (socket instanceof tls.TLSSocket) throw new TypeError('adoptSocket cannot take a TLS socket: its TLS state cannot move to libcurl');
  if (socket.destroyed || socket.connecting || socket.readyState !== 'open') {
    throw new Error(`adoptSocket: the socket is not connected (readyState '${socket.readyState}')`);
  }
  if (socket.readableLength > 0) {
    throw new Error(`adoptSocket: the socket has ${socket.readableLength} bytes of unread data, which libcurl would never see`);
  }
  const fd = (socket as unknown as { _handle?: HandleWithFd | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('adoptSocket: the socket has no file descriptor');
  if (native.peerAddress(fd) === null) throw new Error('adoptSocket: the socket is not connected');
  const queued = native.pendingBytes(fd);
  if (queued > 0) {
    // Data the application may have meant to read through the net.Socket.
    throw new Error(`adoptSocket: the socket has ${queued} bytes of unread data waiting in the kernel`);
  }
  const copy = native.dupSocket(fd);
  socket.destroy();
  return copy;
}

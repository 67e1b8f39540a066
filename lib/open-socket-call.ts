// How the native side calls an OPENSOCKETFUNCTION. It passes the address as
// plain values and this builds the CurlSockaddr: a JS object literal costs far
// less than setting and reading its properties one by one through napi, and
// this runs for every new connection. The function and its data are read from
// the Easy's slot array here, as in lib/slot-calls.ts.
import type { OpenSocketFunction } from './generated/options';
import { CallbackKind } from './native';
import type { CurlSockaddr } from './types';

/**
 * Returned instead of the callback's result when it assigned a new address or
 * port: [result, address, port]. The native side knows it by identity, reads
 * it, and empties it again.
 */
export const openSocketRewrite: unknown[] = [undefined, undefined, undefined];

export function callOpenSocket(
  slots: unknown[],
  purpose: number,
  family: number,
  socktype: number,
  protocol: number,
  address: string,
  port: number,
  scopeId: number | undefined,
): unknown {
  const sockaddr: CurlSockaddr =
    scopeId === undefined ? { family, socktype, protocol, address, port } : { family, socktype, protocol, address, port, scopeId };
  const fn = slots[2 * CallbackKind.OpenSocket] as OpenSocketFunction;
  const result = fn(purpose, sockaddr, slots[2 * CallbackKind.OpenSocket + 1]);
  if (sockaddr.address === address && sockaddr.port === port) return result;
  openSocketRewrite[0] = result;
  openSocketRewrite[1] = sockaddr.address;
  openSocketRewrite[2] = sockaddr.port;
  return openSocketRewrite;
}

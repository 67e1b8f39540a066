// IpPolicy: connect-time IP blocklisting. The address is judged where
// libcurl is about to connect (opensocket), so DNS rebinding, redirects and
// odd IP spellings all end at the same check; reused connections are judged
// by their real peer (prereq + getpeername).
import { AF_INET, AF_INET6, AF_UNIX, CURL_PREREQFUNC_OK } from './constants';
import { internals, type Easy } from './easy';
import { BlockedAddressError } from './errors';
import { CURLPROTO_HTTP, CURLPROTO_HTTPS } from './generated/constants';
import { IpRules, type IpVerdict } from './ip/rules';
import { native } from './native';
import { optionInfo } from './options';
import { createSocket } from './sockets';
import type { CurlSockaddr, IpPolicyOptions } from './types';

/** Options and methods apply() takes away from the handle. */
const LOCKED = [
  'PROXY',
  'PRE_PROXY',
  'UNIX_SOCKET_PATH',
  'ABSTRACT_UNIX_SOCKET',
  'DOH_URL',
  'OPENSOCKETFUNCTION',
  'PREREQFUNCTION',
  'PROTOCOLS',
  'REDIR_PROTOCOLS',
  'PROTOCOLS_STR',
  'REDIR_PROTOCOLS_STR',
  'useConnectedSocket',
] as const;
const LOCK_REASON = 'an IpPolicy was applied to this handle';

const UNIX_ALLOWED: IpVerdict = Object.freeze({ allowed: true, reason: 'unix socket allowed' });
const UNIX_DENIED: IpVerdict = Object.freeze({ allowed: false, reason: 'unix-socket' });
const UNSPECIFIED: ReadonlySet<string> = new Set(['0.0.0.0', '::', '::ffff:0.0.0.0']);
const FAMILY_DENIED: IpVerdict = Object.freeze({ allowed: false, reason: 'unsupported address family' });

export class IpPolicy {
  readonly #rules: IpRules;
  readonly #allowUnixSockets: boolean;

  /** Entries are IPv4/IPv6 addresses or CIDRs. Precedence: deny > allow > default deny of non-public ranges > allow. */
  constructor(options: IpPolicyOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('IpPolicy takes an options object');
    this.#rules = new IpRules({ allow: options.allow, deny: options.deny });
    this.#allowUnixSockets = options.allowUnixSockets === true;
  }

  /** Judges one IP address (text). Pure; malformed input throws TypeError. */
  check(address: string): { allowed: boolean; reason: string } {
    return this.#rules.check(address);
  }

  /**
   * An OPENSOCKETFUNCTION: creates the socket for an allowed address and
   * refuses the others (the transfer then fails with CURLE_COULDNT_CONNECT
   * whose cause is a BlockedAddressError). No packet reaches a denied address.
   */
  readonly opensocket = (_purpose: number, address: CurlSockaddr): number => {
    const verdict = this.#judge(address.family, address.address);
    if (!verdict.allowed) throw new BlockedAddressError(address.address, address.port, address.family, verdict.reason);
    return createSocket(address);
  };

  /**
   * Hardens a handle for untrusted URLs: the opensocket above; a prereq that
   * re-checks the real peer of a reused connection; http and https only (also
   * for redirects); no proxies (environment variables included) and no DoH.
   * Those options can no longer be changed on the handle; reset() and
   * duphandle() keep the policy.
   */
  apply(easy: Easy): Easy {
    if (easy.closed) throw new Error('IpPolicy.apply: the Easy is closed');
    const harden = (target: Easy): void => {
      const set = (name: string, value: unknown): void => {
        if (optionInfo(name)?.available) internals.setoptUnlocked(target, name, value);
      };
      set('OPENSOCKETFUNCTION', this.opensocket);
      set('PREREQFUNCTION', (primaryIp: string, localIp: string, primaryPort: number, localPort: number): number =>
        this.#checkPeer(localIp, localPort, primaryIp, primaryPort));
      const protocolsStr = optionInfo('PROTOCOLS_STR')?.available === true;
      if (protocolsStr) {
        set('PROTOCOLS_STR', 'http,https');
        set('REDIR_PROTOCOLS_STR', 'http,https');
      } else {
        const mask = (CURLPROTO_HTTP ?? 1) | (CURLPROTO_HTTPS ?? 2);
        set('PROTOCOLS', mask);
        set('REDIR_PROTOCOLS', mask);
      }
      set('PROXY', '');  // "" turns proxies off, the proxy environment variables included
      set('PRE_PROXY', null);
      set('DOH_URL', null);
      set('UNIX_SOCKET_PATH', null);
      set('ABSTRACT_UNIX_SOCKET', null);
    };
    native.easy.dropConnectedSocket(internals.native(easy).id);  // a socket handed in earlier would bypass opensocket
    harden(easy);
    internals.lock(easy, LOCKED, LOCK_REASON);
    internals.setHardening(easy, harden);
    return easy;
  }

  #judge(family: number, address: string): IpVerdict {
    if (family === AF_UNIX) return this.#allowUnixSockets ? UNIX_ALLOWED : UNIX_DENIED;
    if (family !== AF_INET && family !== AF_INET6) return FAMILY_DENIED;
    const verdict = this.#rules.check(address);
    if (!verdict.allowed || !UNSPECIFIED.has(address)) return verdict;
    // connect() to the unspecified address reaches this host: it must be
    // allowed as loopback too.
    const local = this.#rules.check(family === AF_INET6 && address === '::' ? '::1' : '127.0.0.1');
    return local.allowed ? verdict : { allowed: false, reason: `${local.reason} (the unspecified address connects to this host)` };
  }

  // libcurl does not call opensocket for a reused connection: judge the
  // socket's real peer (libcurl's primary IP is the URL's host for a
  // handed-in socket, and a path for a Unix socket).
  #checkPeer(localIp: string, localPort: number, primaryIp: string, primaryPort: number): number {
    const fd = native.findSocket(localIp, localPort, primaryIp, primaryPort);
    if (fd < 0) throw new BlockedAddressError('', 0, 0, 'the connection\'s socket was not found');
    const peer = native.peerAddress(fd);
    if (!peer) throw new BlockedAddressError('', 0, 0, 'the socket is not connected');
    const verdict = this.#judge(peer.family, peer.address);
    if (!verdict.allowed) throw new BlockedAddressError(peer.address, peer.port, peer.family, verdict.reason);
    return CURL_PREREQFUNC_OK;
  }
}

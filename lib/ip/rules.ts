// IpRules: the pure verdict behind IpPolicy. Precedence: explicit deny > explicit allow > default
// deny (default-ranges.ts) > allowed as 'public'. IPv4-mapped and NAT64 addresses are unwrapped
// first and judged as IPv4 by every rule (cidr.ts turns IPv6 entries inside those prefixes into
// IPv4 entries, so the verdict never depends on how the IPv4 address was written).
//
// Performance: check() runs per connect and is benchmarked at millions per second, so matching
// uses flat Int32Array masks, and verdicts are frozen objects built once (no allocation per call).

import { embeddedIPv4, parseIPv4, parseIPv6Into } from './address';
import { type Cidr, parseCidr } from './cidr';
import {
  DEFAULT_DENY_IPV4,
  DEFAULT_DENY_IPV6,
  type DefaultRange,
  OUTSIDE_GLOBAL_UNICAST,
} from './default-ranges';

export interface IpVerdict {
  readonly allowed: boolean;
  readonly reason: string;
}

export interface IpRulesOptions {
  allow?: Iterable<string>;
  deny?: Iterable<string>;
}

const PUBLIC: IpVerdict = Object.freeze({ allowed: true, reason: 'public' });

function verdict(allowed: boolean, reason: string): IpVerdict {
  return Object.freeze({ allowed, reason });
}

/** Entries of one family, flattened: IPv4 as [base, mask] pairs, IPv6 as [b0..b3, m0..m3]. */
class MaskList {
  readonly v4: Int32Array;
  readonly v4Verdicts: IpVerdict[] = [];
  readonly v6: Int32Array;
  readonly v6Verdicts: IpVerdict[] = [];

  constructor(entries: readonly { cidr: Cidr; verdict: IpVerdict }[]) {
    // Longest prefix first, so nested ranges report the most specific reason.
    const sorted = [...entries].sort((a, b) => b.cidr.prefix - a.cidr.prefix);
    const v4: number[] = [];
    const v6: number[] = [];
    for (const { cidr, verdict: v } of sorted) {
      if (cidr.family === 4) {
        v4.push(cidr.base[0], cidr.mask[0]);
        this.v4Verdicts.push(v);
      } else {
        v6.push(...cidr.base, ...cidr.mask);
        this.v6Verdicts.push(v);
      }
    }
    this.v4 = Int32Array.from(v4);
    this.v6 = Int32Array.from(v6);
  }

  matchIPv4(a: number): IpVerdict | null {
    const list = this.v4;
    for (let i = 0; i < list.length; i += 2) {
      if ((a & list[i + 1]) === list[i]) return this.v4Verdicts[i >> 1];
    }
    return null;
  }

  matchIPv6(w0: number, w1: number, w2: number, w3: number): IpVerdict | null {
    const list = this.v6;
    for (let i = 0; i < list.length; i += 8) {
      if (
        (w0 & list[i + 4]) === list[i] &&
        (w1 & list[i + 5]) === list[i + 1] &&
        (w2 & list[i + 6]) === list[i + 2] &&
        (w3 & list[i + 7]) === list[i + 3]
      ) {
        return this.v6Verdicts[i >> 3];
      }
    }
    return null;
  }
}

function defaultEntries(table: readonly DefaultRange[]): { cidr: Cidr; verdict: IpVerdict }[] {
  return table.map((r) => ({ cidr: parseCidr(r.cidr), verdict: verdict(false, r.reason) }));
}

// The default IPv6 table is short enough to scan; the IPv4 one is bucketed by first octet so a
// public address usually costs a single empty-bucket lookup.
const DEFAULT_V6 = new MaskList(defaultEntries(DEFAULT_DENY_IPV6));
const OUTSIDE_GLOBAL = verdict(false, OUTSIDE_GLOBAL_UNICAST);
const DEFAULT_V4_BUCKETS: (MaskList | null)[] = (() => {
  const all = defaultEntries(DEFAULT_DENY_IPV4);
  const buckets: (MaskList | null)[] = [];
  for (let octet = 0; octet < 256; octet++) {
    const inOctet = all.filter(({ cidr }) => {
      const first = cidr.base[0] >>> 24;
      const last = (cidr.base[0] | ~cidr.mask[0]) >>> 24;
      return octet >= first && octet <= last;
    });
    buckets.push(inOctet.length === 0 ? null : new MaskList(inOctet));
  }
  return buckets;
})();

const scratch = new Uint16Array(8);

function invalidAddress(address: unknown): TypeError {
  return new TypeError(`Invalid IP address: ${JSON.stringify(address)}`);
}

function explicitEntries(
  list: Iterable<string> | undefined,
  allowed: boolean,
  name: string,
): { cidr: Cidr; verdict: IpVerdict }[] {
  if (list === undefined) return [];
  // A bare string is iterable too (by character); refuse it rather than read "10.0.0.0/8" as "1".
  if (typeof list === 'string' || list === null || typeof list[Symbol.iterator] !== 'function') {
    throw new TypeError(`IpRules option "${name}" must be an iterable of strings`);
  }
  const out: { cidr: Cidr; verdict: IpVerdict }[] = [];
  for (const entry of list) {
    const cidr = parseCidr(entry);
    out.push({ cidr, verdict: verdict(allowed, `${allowed ? 'allowed' : 'denied'} by ${cidr.text}`) });
  }
  return out;
}

/**
 * Parses an address the way check() does: strict dotted quad, or IPv6 (brackets and %zone
 * accepted). IPv4-mapped/NAT64 addresses come back as family 4 with the embedded address.
 * Throws TypeError if malformed.
 */
export function parseAddressForCheck(
  address: string,
): { family: 4; address: number } | { family: 6; groups: Uint16Array } {
  if (typeof address !== 'string') throw invalidAddress(address);
  const v4 = parseIPv4(address);
  if (v4 >= 0) return { family: 4, address: v4 };
  const groups = new Uint16Array(8);
  if (!parseIPv6Into(address, groups)) throw invalidAddress(address);
  const inner = embeddedIPv4(groups);
  return inner >= 0 ? { family: 4, address: inner } : { family: 6, groups };
}

export class IpRules {
  private readonly deny: MaskList;
  private readonly allow: MaskList;

  /** Throws TypeError naming the first malformed entry. */
  constructor(options: IpRulesOptions = {}) {
    this.deny = new MaskList(explicitEntries(options.deny, false, 'deny'));
    this.allow = new MaskList(explicitEntries(options.allow, true, 'allow'));
  }

  /** Verdict for an address string; throws TypeError if it is not a strict IPv4/IPv6 address. */
  check(address: string): IpVerdict {
    if (typeof address !== 'string') throw invalidAddress(address);
    const v4 = parseIPv4(address);
    if (v4 >= 0) return this.checkIPv4(v4);
    if (!parseIPv6Into(address, scratch)) throw invalidAddress(address);
    return this.checkIPv6(scratch);
  }

  /** Verdict for an IPv4 address given as uint32 (or its int32 bit pattern). */
  checkIPv4(address: number): IpVerdict {
    const a = address | 0;
    const explicit = this.deny.matchIPv4(a) ?? this.allow.matchIPv4(a);
    if (explicit !== null) return explicit;
    const bucket = DEFAULT_V4_BUCKETS[a >>> 24];
    return (bucket !== null && bucket.matchIPv4(a)) || PUBLIC;
  }

  /** Verdict for an IPv6 address given as 8 groups; mapped/NAT64 ones are judged as IPv4. */
  checkIPv6(groups: ArrayLike<number>): IpVerdict {
    const inner = embeddedIPv4(groups);
    if (inner >= 0) return this.checkIPv4(inner);
    const w0 = (groups[0] << 16) | groups[1];
    const w1 = (groups[2] << 16) | groups[3];
    const w2 = (groups[4] << 16) | groups[5];
    const w3 = (groups[6] << 16) | groups[7];
    const explicit = this.deny.matchIPv6(w0, w1, w2, w3) ?? this.allow.matchIPv6(w0, w1, w2, w3);
    if (explicit !== null) return explicit;
    const named = DEFAULT_V6.matchIPv6(w0, w1, w2, w3);
    if (named !== null) return named;
    // Only 2000::/3 (global unicast) is public.
    return (w0 >>> 29) === 1 ? PUBLIC : OUTSIDE_GLOBAL;
  }
}

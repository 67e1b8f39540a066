// Parses allow/deny entries ("10.0.0.0/8", "::1", "2001:db8::/32") into masks for fast matching.
//
// Decisions:
// - Host bits after the prefix are allowed and masked off ("10.1.2.3/8" means 10.0.0.0/8); `text`
//   shows the masked, normalized form.
// - An IPv6 entry that lies wholly inside ::ffff:0:0/96 or 64:ff9b::/96 (prefix >= 96) becomes an
//   IPv4 entry with prefix - 96, because addresses there are judged as their IPv4 address by every
//   rule. So "::ffff:7f00:0/104" matches 127.0.0.1 as well as ::ffff:127.0.0.1, and
//   "64:ff9b::/96" covers all of IPv4. IPv6 entries with shorter prefixes never match those
//   addresses.
// - A %zone is refused in entries (it would be silently ignored, which misleads); brackets are
//   accepted as for addresses.

import { embeddedIPv4, formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from './address';

export interface Cidr {
  /** Family the match runs in: 4 also for IPv6 entries inside the unwrapped prefixes. */
  readonly family: 4 | 6;
  /** Prefix length in that family. */
  readonly prefix: number;
  /** Masked base: 1 int32 word for family 4, 4 words (most significant first) for family 6. */
  readonly base: Int32Array;
  readonly mask: Int32Array;
  /** Normalized CIDR in the family it was written in, prefix always shown ("10.0.0.1/32"). */
  readonly text: string;
}

/** Mask with the top `bits` (0-32) bits set, as int32. */
function maskBits(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? -1 : ~(-1 >>> bits);
}

function malformed(entry: unknown): TypeError {
  return new TypeError(`Invalid IP address or CIDR entry: ${JSON.stringify(entry)}`);
}

/** Strict decimal prefix length in [0, max], no leading zeros; -1 if malformed. */
function parsePrefix(text: string, from: number, max: number): number {
  const n = text.length - from;
  if (n < 1 || n > 3) return -1;
  let value = 0;
  for (let i = from; i < text.length; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    if (i > from && value === 0) return -1; // leading zero
    value = value * 10 + d;
  }
  return value <= max ? value : -1;
}

function v4Cidr(address: number, prefix: number, text: string | null): Cidr {
  const mask = maskBits(prefix);
  const base = address & mask;
  return {
    family: 4,
    prefix,
    base: Int32Array.of(base),
    mask: Int32Array.of(mask),
    text: text ?? `${formatIPv4(base)}/${prefix}`,
  };
}

/** Parses an IPv4/IPv6 address or CIDR; throws TypeError naming the entry if malformed. */
export function parseCidr(entry: string): Cidr {
  if (typeof entry !== 'string') throw malformed(entry);
  const slash = entry.indexOf('/');
  const addressText = slash < 0 ? entry : entry.slice(0, slash);
  const v4 = parseIPv4(addressText);
  if (v4 >= 0) {
    const prefix = slash < 0 ? 32 : parsePrefix(entry, slash + 1, 32);
    if (prefix < 0) throw malformed(entry);
    return v4Cidr(v4, prefix, null);
  }

  if (addressText.includes('%')) throw malformed(entry);
  const groups = parseIPv6(addressText);
  if (groups === null) throw malformed(entry);
  const prefix = slash < 0 ? 128 : parsePrefix(entry, slash + 1, 128);
  if (prefix < 0) throw malformed(entry);

  const base = new Int32Array(4);
  const mask = new Int32Array(4);
  for (let w = 0; w < 4; w++) {
    mask[w] = maskBits(prefix - 32 * w);
    base[w] = ((groups[2 * w] << 16) | groups[2 * w + 1]) & mask[w];
    groups[2 * w] = base[w] >>> 16;
    groups[2 * w + 1] = base[w] & 0xffff;
  }
  const text = `${formatIPv6(groups)}/${prefix}`;
  if (prefix >= 96) {
    const inner = embeddedIPv4(groups);
    if (inner >= 0) return v4Cidr(inner, prefix - 96, text);
  }
  return { family: 6, prefix, base, mask, text };
}

/** True if the uint32/int32 IPv4 address is inside the family-4 `cidr`. */
export function containsIPv4(cidr: Cidr, address: number): boolean {
  return cidr.family === 4 && (address & cidr.mask[0]) === cidr.base[0];
}

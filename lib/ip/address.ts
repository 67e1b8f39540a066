// Strict IP address parsers and formatters. Hand-written char-code scanning: these run on every
// connect (IpPolicy), so no regex and no allocation on the IPv4 path. Anything not in the exact
// grammar below is malformed; there is no inet_aton leniency (octal, hex, short forms).

const DOT = 46; // .
const COLON = 58; // :
const PERCENT = 37; // %
const OPEN = 91; // [
const CLOSE = 93; // ]

/**
 * Parses `text[from, to)` as a strict dotted quad: four decimal parts 0-255, no leading zeros
 * except a lone "0", nothing else. Returns the address as a non-negative uint32, or -1.
 */
export function parseIPv4Range(text: string, from: number, to: number): number {
  const n = to - from;
  if (n < 7 || n > 15) return -1;
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === DOT) {
      if (digits === 0 || dots === 3) return -1;
      // Multiplication, not <<, keeps the result a non-negative double below 2^32.
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      const d = c - 48;
      if (d < 0 || d > 9) return -1;
      if (digits !== 0 && part === 0) return -1; // leading zero ("00", "01")
      part = part * 10 + d;
      if (part > 255) return -1;
      digits++;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
}

/** Strict dotted quad to uint32 (non-negative), or -1 if malformed. */
export function parseIPv4(text: string): number {
  return parseIPv4Range(text, 0, text.length);
}

/** uint32 (or int32 bit pattern) to dotted quad. */
export function formatIPv4(address: number): string {
  const a = address >>> 0;
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  const l = c | 0x20; // fold A-F onto a-f
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

// RFC 6874 "unreserved" characters: the zone is ignored, but it still has to look like one.
function isZoneChar(c: number): boolean {
  return (
    (c >= 48 && c <= 57) ||
    ((c | 0x20) >= 97 && (c | 0x20) <= 122) ||
    c === 45 || c === 46 || c === 95 || c === 126 // - . _ ~
  );
}

/**
 * Parses an IPv6 address into `out` (8 groups). Accepts `::` once, a dotted-quad tail in the last
 * 32 bits, hex in either case, an optional `%zone` (validated, then ignored) and optional
 * surrounding brackets. Returns false (with `out` clobbered) if malformed.
 */
export function parseIPv6Into(text: string, out: Uint16Array): boolean {
  let start = 0;
  let end = text.length;
  if (end !== 0 && text.charCodeAt(0) === OPEN) {
    if (text.charCodeAt(end - 1) !== CLOSE) return false;
    start = 1;
    end--;
  }
  for (let i = start; i < end; i++) {
    if (text.charCodeAt(i) === PERCENT) {
      if (i + 1 === end) return false; // empty zone
      for (let j = i + 1; j < end; j++) if (!isZoneChar(text.charCodeAt(j))) return false;
      end = i;
      break;
    }
  }
  if (end - start < 2) return false;

  let count = 0; // groups written
  let gap = -1; // group index where "::" stands
  let i = start;
  if (text.charCodeAt(i) === COLON) {
    if (text.charCodeAt(i + 1) !== COLON) return false; // lone leading ':'
    gap = 0;
    i += 2;
  }
  while (i < end) {
    const groupStart = i;
    let value = 0;
    let digits = 0;
    while (i < end) {
      const h = hexValue(text.charCodeAt(i));
      if (h < 0) break;
      value = value * 16 + h;
      digits++;
      i++;
    }
    if (i < end && text.charCodeAt(i) === DOT) {
      // Dotted-quad tail: must end the address and fit in the last two groups.
      if (count > 6) return false;
      const v4 = parseIPv4Range(text, groupStart, end);
      if (v4 < 0) return false;
      out[count++] = v4 >>> 16;
      out[count++] = v4 & 0xffff;
      i = end;
      break;
    }
    if (digits === 0 || digits > 4 || count === 8) return false;
    out[count++] = value;
    if (i === end) break;
    if (text.charCodeAt(i) !== COLON) return false;
    i++;
    if (i < end && text.charCodeAt(i) === COLON) {
      if (gap >= 0) return false; // second "::"
      gap = count;
      i++;
    } else if (i === end) {
      return false; // trailing lone ':'
    }
  }

  if (gap < 0) return count === 8;
  if (count > 7) return false; // "::" must stand for at least one group
  // Slide the groups after "::" to the end and zero the hole.
  const tail = count - gap;
  for (let k = tail - 1; k >= 0; k--) out[8 - tail + k] = out[gap + k];
  for (let k = gap; k < 8 - tail; k++) out[k] = 0;
  return true;
}

/** Parses an IPv6 address (see parseIPv6Into) into a new array of 8 groups, or null. */
export function parseIPv6(text: string): Uint16Array | null {
  const out = new Uint16Array(8);
  return parseIPv6Into(text, out) ? out : null;
}

/**
 * The IPv4 address embedded in an IPv4-mapped (::ffff:0:0/96) or NAT64 well-known-prefix
 * (64:ff9b::/96) address, as uint32; -1 for any other address. Such addresses are judged as
 * their IPv4 address by every rule.
 */
export function embeddedIPv4(g: ArrayLike<number>): number {
  if (g[4] !== 0) return -1;
  const mapped = g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[5] === 0xffff;
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && g[2] === 0 && g[3] === 0 && g[5] === 0;
  return mapped || nat64 ? g[6] * 65536 + g[7] : -1;
}

/**
 * RFC 5952 text: lowercase, no leading zeros, the longest run (>= 2) of zero groups as "::"
 * (the first on a tie), and IPv4-mapped addresses as ::ffff:a.b.c.d.
 */
export function formatIPv6(g: ArrayLike<number>): string {
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${formatIPv4(g[6] * 65536 + g[7])}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let k = 0; k < 8; ) {
    if (g[k] !== 0) {
      k++;
      continue;
    }
    let e = k;
    while (e < 8 && g[e] === 0) e++;
    if (e - k > bestLen) {
      bestStart = k;
      bestLen = e - k;
    }
    k = e;
  }
  const hex = (from: number, to: number): string => {
    const parts: string[] = [];
    for (let k = from; k < to; k++) parts.push(g[k].toString(16));
    return parts.join(':');
  };
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

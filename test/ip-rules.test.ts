import { describe, it, expect } from 'vitest';
import { IpRules, parseAddressForCheck } from '../lib/ip/rules';
import { formatIPv6, parseIPv4, parseIPv6 } from '../lib/ip/address';
import { parseCidr } from '../lib/ip/cidr';

// One row per default range: its first and last address, and the addresses just outside each
// edge (null where the range touches the end of the address space). Each address is paired with
// the reason expected from the default table alone ('public' means allowed).
type Probe = [address: string, reason: string];
interface Edge {
  range: string;
  before: Probe | null;
  first: Probe;
  last: Probe;
  after: Probe | null;
}

const FF = 'ffff:ffff:ffff:ffff:ffff:ffff';

const IPV4_EDGES: Edge[] = [
  { range: '0.0.0.0/8', before: null, first: ['0.0.0.0', 'this-network'], last: ['0.255.255.255', 'this-network'], after: ['1.0.0.0', 'public'] },
  { range: '10.0.0.0/8', before: ['9.255.255.255', 'public'], first: ['10.0.0.0', 'private'], last: ['10.255.255.255', 'private'], after: ['11.0.0.0', 'public'] },
  { range: '100.64.0.0/10', before: ['100.63.255.255', 'public'], first: ['100.64.0.0', 'shared'], last: ['100.127.255.255', 'shared'], after: ['100.128.0.0', 'public'] },
  { range: '127.0.0.0/8', before: ['126.255.255.255', 'public'], first: ['127.0.0.0', 'loopback'], last: ['127.255.255.255', 'loopback'], after: ['128.0.0.0', 'public'] },
  { range: '169.254.0.0/16', before: ['169.253.255.255', 'public'], first: ['169.254.0.0', 'link-local'], last: ['169.254.255.255', 'link-local'], after: ['169.255.0.0', 'public'] },
  { range: '172.16.0.0/12', before: ['172.15.255.255', 'public'], first: ['172.16.0.0', 'private'], last: ['172.31.255.255', 'private'], after: ['172.32.0.0', 'public'] },
  { range: '192.0.0.0/24', before: ['191.255.255.255', 'public'], first: ['192.0.0.0', 'ietf-protocol'], last: ['192.0.0.255', 'ietf-protocol'], after: ['192.0.1.0', 'public'] },
  { range: '192.0.2.0/24', before: ['192.0.1.255', 'public'], first: ['192.0.2.0', 'documentation'], last: ['192.0.2.255', 'documentation'], after: ['192.0.3.0', 'public'] },
  { range: '192.31.196.0/24', before: ['192.31.195.255', 'public'], first: ['192.31.196.0', 'as112'], last: ['192.31.196.255', 'as112'], after: ['192.31.197.0', 'public'] },
  { range: '192.52.193.0/24', before: ['192.52.192.255', 'public'], first: ['192.52.193.0', 'amt'], last: ['192.52.193.255', 'amt'], after: ['192.52.194.0', 'public'] },
  { range: '192.88.99.0/24', before: ['192.88.98.255', 'public'], first: ['192.88.99.0', '6to4-relay'], last: ['192.88.99.255', '6to4-relay'], after: ['192.88.100.0', 'public'] },
  { range: '192.168.0.0/16', before: ['192.167.255.255', 'public'], first: ['192.168.0.0', 'private'], last: ['192.168.255.255', 'private'], after: ['192.169.0.0', 'public'] },
  { range: '192.175.48.0/24', before: ['192.175.47.255', 'public'], first: ['192.175.48.0', 'as112'], last: ['192.175.48.255', 'as112'], after: ['192.175.49.0', 'public'] },
  { range: '198.18.0.0/15', before: ['198.17.255.255', 'public'], first: ['198.18.0.0', 'benchmarking'], last: ['198.19.255.255', 'benchmarking'], after: ['198.20.0.0', 'public'] },
  { range: '198.51.100.0/24', before: ['198.51.99.255', 'public'], first: ['198.51.100.0', 'documentation'], last: ['198.51.100.255', 'documentation'], after: ['198.51.101.0', 'public'] },
  { range: '203.0.113.0/24', before: ['203.0.112.255', 'public'], first: ['203.0.113.0', 'documentation'], last: ['203.0.113.255', 'documentation'], after: ['203.0.114.0', 'public'] },
  { range: '224.0.0.0/4', before: ['223.255.255.255', 'public'], first: ['224.0.0.0', 'multicast'], last: ['239.255.255.255', 'multicast'], after: ['240.0.0.0', 'reserved'] },
  // The last address of 240/4 is the broadcast address, which has its own reason.
  { range: '240.0.0.0/4', before: ['239.255.255.255', 'multicast'], first: ['240.0.0.0', 'reserved'], last: ['255.255.255.255', 'broadcast'], after: null },
  { range: '255.255.255.255/32', before: ['255.255.255.254', 'reserved'], first: ['255.255.255.255', 'broadcast'], last: ['255.255.255.255', 'broadcast'], after: null },
];

const IPV6_EDGES: Edge[] = [
  { range: '::/128', before: null, first: ['::', 'unspecified'], last: ['::', 'unspecified'], after: ['::1', 'loopback'] },
  { range: '::1/128', before: ['::', 'unspecified'], first: ['::1', 'loopback'], last: ['::1', 'loopback'], after: ['::2', 'ipv4-compatible'] },
  // ::/96 starts with :: (its own reason); ::ffff:ffff is 0:0:0:0:0:0:ffff:ffff, not mapped.
  { range: '::/96', before: null, first: ['::', 'unspecified'], last: ['::ffff:ffff', 'ipv4-compatible'], after: ['::1:0:0', 'not-global-unicast'] },
  // Unwrapped prefixes: the edges are IPv4 0.0.0.0 and 255.255.255.255.
  { range: '::ffff:0:0/96', before: ['::fffe:ffff:ffff', 'not-global-unicast'], first: ['::ffff:0:0', 'this-network'], last: ['::ffff:255.255.255.255', 'broadcast'], after: ['::1:0:0:0', 'not-global-unicast'] },
  { range: '64:ff9b::/96', before: ['64:ff9a:ffff:ffff:' + 'ffff:ffff:ffff:ffff', 'not-global-unicast'], first: ['64:ff9b::', 'this-network'], last: ['64:ff9b::ffff:ffff', 'broadcast'], after: ['64:ff9b::1:0:0', 'not-global-unicast'] },
  { range: '64:ff9b:1::/48', before: ['64:ff9b:0:ffff:ffff:ffff:ffff:ffff', 'not-global-unicast'], first: ['64:ff9b:1::', 'nat64-local'], last: ['64:ff9b:1:ffff:ffff:ffff:ffff:ffff', 'nat64-local'], after: ['64:ff9b:2::', 'not-global-unicast'] },
  { range: '100::/64', before: [`ff:${FF}:ffff`, 'not-global-unicast'], first: ['100::', 'discard'], last: ['100::ffff:ffff:ffff:ffff', 'discard'], after: ['100:0:0:1::', 'not-global-unicast'] },
  { range: '5f00::/16', before: [`5eff:${FF}:ffff`, 'not-global-unicast'], first: ['5f00::', 'srv6'], last: [`5f00:${FF}:ffff`, 'srv6'], after: ['5f01::', 'not-global-unicast'] },
  { range: 'fc00::/7', before: [`fbff:${FF}:ffff`, 'not-global-unicast'], first: ['fc00::', 'unique-local'], last: [`fdff:${FF}:ffff`, 'unique-local'], after: ['fe00::', 'not-global-unicast'] },
  { range: 'fe80::/10', before: [`fe7f:${FF}:ffff`, 'not-global-unicast'], first: ['fe80::', 'link-local'], last: [`febf:${FF}:ffff`, 'link-local'], after: ['fec0::', 'site-local'] },
  { range: 'fec0::/10', before: [`febf:${FF}:ffff`, 'link-local'], first: ['fec0::', 'site-local'], last: [`feff:${FF}:ffff`, 'site-local'], after: ['ff00::', 'multicast'] },
  { range: 'ff00::/8', before: [`feff:${FF}:ffff`, 'site-local'], first: ['ff00::', 'multicast'], last: [`ffff:${FF}:ffff`, 'multicast'], after: null },
  { range: '2001::/32', before: [`2000:${FF}:ffff`, 'public'], first: ['2001::', 'teredo'], last: [`2001:0:${FF}`, 'teredo'], after: ['2001:1::', 'ietf-protocol'] },
  { range: '2001::/23', before: [`2000:${FF}:ffff`, 'public'], first: ['2001::', 'teredo'], last: [`2001:1ff:${FF}`, 'ietf-protocol'], after: ['2001:200::', 'public'] },
  { range: '2001:db8::/32', before: [`2001:db7:${FF}`, 'public'], first: ['2001:db8::', 'documentation'], last: [`2001:db8:${FF}`, 'documentation'], after: ['2001:db9::', 'public'] },
  { range: '2002::/16', before: [`2001:ffff:${FF}`, 'public'], first: ['2002::', '6to4'], last: [`2002:${FF}:ffff`, '6to4'], after: ['2003::', 'public'] },
  { range: '2620:4f:8000::/48', before: ['2620:4f:7fff:ffff:ffff:ffff:ffff:ffff', 'public'], first: ['2620:4f:8000::', 'as112'], last: ['2620:4f:8000:ffff:ffff:ffff:ffff:ffff', 'as112'], after: ['2620:4f:8001::', 'public'] },
  { range: '3fff::/20', before: [`3ffe:${FF}:ffff`, 'public'], first: ['3fff::', 'documentation'], last: [`3fff:fff:${FF}`, 'documentation'], after: ['3fff:1000::', 'public'] },
  // 2000::/3 is the only public IPv6 space: its outside neighbours are denied.
  { range: '2000::/3', before: [`1fff:${FF}:ffff`, 'not-global-unicast'], first: ['2000::', 'public'], last: [`3fff:${FF}:ffff`, 'public'], after: ['4000::', 'not-global-unicast'] },
];

const rules = new IpRules();

function expectVerdict(r: IpRules, address: string, reason: string): void {
  expect(r.check(address), address).toEqual({ allowed: reason === 'public' || reason.startsWith('allowed by'), reason });
}

describe('IpRules default table', () => {
  for (const edge of [...IPV4_EDGES, ...IPV6_EDGES]) {
    it(`edges of ${edge.range}`, () => {
      for (const probe of [edge.before, edge.first, edge.last, edge.after]) {
        if (probe) expectVerdict(rules, probe[0], probe[1]);
      }
    });
  }

  it('denies the first and last address of every denied range', () => {
    for (const edge of [...IPV4_EDGES, ...IPV6_EDGES]) {
      if (edge.range === '2000::/3') continue;
      expect(rules.check(edge.first[0]).allowed, edge.first[0]).toBe(false);
      expect(rules.check(edge.last[0]).allowed, edge.last[0]).toBe(false);
    }
  });

  it('allows public controls', () => {
    for (const a of ['8.8.8.8', '1.1.1.1', '2606:4700::1111', '2a00:1450::1', '[2606:4700::1111]']) {
      expectVerdict(rules, a, 'public');
    }
  });

  it('judges IPv4-mapped and NAT64 addresses as IPv4', () => {
    expectVerdict(rules, '::ffff:127.0.0.1', 'loopback');
    expectVerdict(rules, '::ffff:7f00:1', 'loopback');
    expectVerdict(rules, '::FFFF:7F00:1', 'loopback');
    expectVerdict(rules, '[::ffff:127.0.0.1]', 'loopback');
    expectVerdict(rules, '0:0:0:0:0:ffff:10.0.0.1', 'private');
    expectVerdict(rules, '::ffff:8.8.8.8', 'public');
    expectVerdict(rules, '64:ff9b::7f00:1', 'loopback');
    expectVerdict(rules, '64:ff9b::127.0.0.1', 'loopback');
    expectVerdict(rules, '64:ff9b::808:808', 'public');
    expectVerdict(rules, '64:ff9b:1::1', 'nat64-local');
  });

  it('accepts and ignores a zone', () => {
    expectVerdict(rules, 'fe80::1%eth0', 'link-local');
    expectVerdict(rules, '[fe80::1%eth0]', 'link-local');
    expectVerdict(rules, '2606:4700::1111%1', 'public');
  });
});

describe('IpRules explicit entries', () => {
  it('explicit deny of an IPv4 range also denies mapped and NAT64 forms', () => {
    const r = new IpRules({ deny: ['127.0.0.0/8', '8.8.8.0/24'] });
    expectVerdict(r, '127.0.0.1', 'denied by 127.0.0.0/8');
    expectVerdict(r, '[::ffff:127.0.0.1]', 'denied by 127.0.0.0/8');
    expectVerdict(r, '64:ff9b::808:808', 'denied by 8.8.8.0/24');
    expectVerdict(r, '8.8.4.4', 'public');
  });

  it('explicit allow beats the default deny, only inside the entry', () => {
    const r = new IpRules({ allow: ['10.1.0.0/16'] });
    expectVerdict(r, '10.1.2.3', 'allowed by 10.1.0.0/16');
    expectVerdict(r, '::ffff:10.1.2.3', 'allowed by 10.1.0.0/16');
    expectVerdict(r, '10.2.0.1', 'private');
    expectVerdict(r, '10.0.255.255', 'private');
    expectVerdict(r, '10.1.255.255', 'allowed by 10.1.0.0/16');
  });

  it('deny beats allow, whatever the prefix lengths', () => {
    const r = new IpRules({ allow: ['10.1.2.3', '::1'], deny: ['10.0.0.0/8', '::/0'] });
    expectVerdict(r, '10.1.2.3', 'denied by 10.0.0.0/8');
    expectVerdict(r, '::1', 'denied by ::/0');
    expectVerdict(r, '2606:4700::1111', 'denied by ::/0');
    // IPv6 entries shorter than /96 do not reach unwrapped addresses: those are IPv4.
    expectVerdict(r, '::ffff:8.8.8.8', 'public');
  });

  it('IPv6 entries inside the mapped prefix act as IPv4 entries', () => {
    const r = new IpRules({ deny: ['::ffff:7f00:0/104'], allow: ['::ffff:0:0/96'] });
    expectVerdict(r, '127.0.0.1', 'denied by ::ffff:127.0.0.0/104');
    expectVerdict(r, '::ffff:127.0.0.1', 'denied by ::ffff:127.0.0.0/104');
    expectVerdict(r, '64:ff9b::7f00:1', 'denied by ::ffff:127.0.0.0/104');
    expectVerdict(r, '10.0.0.1', 'allowed by ::ffff:0.0.0.0/96');
    expectVerdict(r, 'fe80::1', 'link-local');
  });

  it('normalizes entries: host bits masked, IPv6 canonical, prefix always shown', () => {
    const r = new IpRules({ deny: ['10.9.8.7/8', '2001:DB8:0:0::1/32', '192.0.2.1', 'fe80::1'] });
    expectVerdict(r, '10.1.1.1', 'denied by 10.0.0.0/8');
    expectVerdict(r, '2001:db8::5', 'denied by 2001:db8::/32');
    expectVerdict(r, '192.0.2.1', 'denied by 192.0.2.1/32');
    expectVerdict(r, '192.0.2.2', 'documentation');
    expectVerdict(r, 'fe80::1', 'denied by fe80::1/128');
    expect(parseCidr('1.2.3.4/0').text).toBe('0.0.0.0/0');
  });

  it('explicit allow reports its entry even for a public address', () => {
    const r = new IpRules({ allow: ['2606:4700::/32'] });
    expectVerdict(r, '2606:4700::1111', 'allowed by 2606:4700::/32');
  });

  it('returns frozen verdicts', () => {
    expect(Object.isFrozen(rules.check('8.8.8.8'))).toBe(true);
    expect(Object.isFrozen(rules.check('127.0.0.1'))).toBe(true);
  });
});

describe('malformed input', () => {
  const badAddresses = [
    '1.2.3', '256.1.1.1', '01.2.3.4', '1.2.3.04', '1.2.3.4.', '.1.2.3.4', '1..2.3', '1.2.3.4.5',
    '0x1.2.3.4', '1.2.3.-4', '::1::', 'abc', '', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.4/8', '[1.2.3.4]',
    ':::', ':1::', '1::2:', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '12345::',
    '::g', '[::1', '::1]', 'fe80::1%', 'fe80::1%eth 0', '::ffff:1.2.3', '::ffff:01.2.3.4',
    '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3.4:5', '::ffff:256.0.0.0', '1.2.3.4::', '::/128',
  ];
  for (const bad of badAddresses) {
    it(`check(${JSON.stringify(bad)}) throws TypeError`, () => {
      expect(() => rules.check(bad)).toThrow(TypeError);
    });
  }

  it('check() refuses non-strings', () => {
    expect(() => rules.check(123 as unknown as string)).toThrow(TypeError);
  });

  const badEntries = [
    '10.0.0.0/33', '10.0.0.0/', '10.0.0.0/08', '10.0.0.0/-1', '/8', '::/129', '::1/1a',
    'fe80::/10%eth0', 'fe80::1%eth0', 'abc', '', '10.0.0.0/8 ', '1.2.3', '10.0.0.0/8/8',
  ];
  for (const bad of badEntries) {
    it(`entry ${JSON.stringify(bad)} throws TypeError naming it`, () => {
      expect(() => new IpRules({ deny: [bad] })).toThrow(TypeError);
      expect(() => new IpRules({ allow: [bad] })).toThrow(JSON.stringify(bad));
    });
  }

  it('refuses a bare string instead of a list', () => {
    expect(() => new IpRules({ deny: '10.0.0.0/8' })).toThrow(TypeError);
  });
});

describe('address helpers', () => {
  it('parses strict dotted quads to uint32', () => {
    expect(parseIPv4('255.255.255.255')).toBe(0xffffffff);
    expect(parseIPv4('0.0.0.0')).toBe(0);
    expect(parseIPv4('1.2.3.4')).toBe(0x01020304);
    expect(parseIPv4('1.2.3.4x')).toBe(-1);
  });

  it('parses IPv6 forms to the same groups', () => {
    const expected = [0x2001, 0xdb8, 0, 0, 0, 0, 0xff00, 0x42];
    for (const t of ['2001:db8::ff00:42', '2001:0DB8:0:0:0:0:FF00:0042', '[2001:db8::ff00:42%x]', '2001:db8::255.0.0.66']) {
      expect(Array.from(parseIPv6(t) ?? []), t).toEqual(expected);
    }
    expect(Array.from(parseIPv6('1:2:3:4:5:6:7::') ?? [])).toEqual([1, 2, 3, 4, 5, 6, 7, 0]);
    expect(Array.from(parseIPv6('::2:3:4:5:6:7:8') ?? [])).toEqual([0, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('formats IPv6 per RFC 5952', () => {
    const fmt = (t: string): string => formatIPv6(parseIPv6(t) as Uint16Array);
    expect(fmt('2001:0db8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(fmt('2001:db8:0:1:0:0:0:1')).toBe('2001:db8:0:1::1');
    expect(fmt('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(fmt('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(fmt('::')).toBe('::');
    expect(fmt('::ffff:7f00:1')).toBe('::ffff:127.0.0.1');
  });

  it('parseAddressForCheck unwraps mapped addresses', () => {
    expect(parseAddressForCheck('::ffff:1.2.3.4')).toEqual({ family: 4, address: 0x01020304 });
    expect(parseAddressForCheck('1.2.3.4')).toEqual({ family: 4, address: 0x01020304 });
    const v6 = parseAddressForCheck('::1');
    expect(v6.family).toBe(6);
    expect(() => parseAddressForCheck('1.2.3')).toThrow(TypeError);
  });
});

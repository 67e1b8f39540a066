// The default-deny table (DESIGN.md, "Default deny"): every range that is not public unicast, from
// the IANA IPv4/IPv6 special-purpose registries and the practice of Smokescreen, safeurl and
// ssrf_filter. Ranges may nest; the longest matching prefix gives the reason.

export interface DefaultRange {
  readonly cidr: string;
  /** Short reason word, reported as the BlockedAddressError reason. */
  readonly reason: string;
}

export const DEFAULT_DENY_IPV4: readonly DefaultRange[] = Object.freeze([
  { cidr: '0.0.0.0/8', reason: 'this-network' },
  { cidr: '10.0.0.0/8', reason: 'private' },
  { cidr: '100.64.0.0/10', reason: 'shared' },
  { cidr: '127.0.0.0/8', reason: 'loopback' },
  { cidr: '169.254.0.0/16', reason: 'link-local' },
  { cidr: '172.16.0.0/12', reason: 'private' },
  { cidr: '192.0.0.0/24', reason: 'ietf-protocol' },
  { cidr: '192.0.2.0/24', reason: 'documentation' },
  { cidr: '192.31.196.0/24', reason: 'as112' },
  { cidr: '192.52.193.0/24', reason: 'amt' },
  { cidr: '192.88.99.0/24', reason: '6to4-relay' },
  { cidr: '192.168.0.0/16', reason: 'private' },
  { cidr: '192.175.48.0/24', reason: 'as112' },
  { cidr: '198.18.0.0/15', reason: 'benchmarking' },
  { cidr: '198.51.100.0/24', reason: 'documentation' },
  { cidr: '203.0.113.0/24', reason: 'documentation' },
  { cidr: '224.0.0.0/4', reason: 'multicast' },
  { cidr: '240.0.0.0/4', reason: 'reserved' },
  { cidr: '255.255.255.255/32', reason: 'broadcast' },
]);

/**
 * IPv6 ranges with their own reason. Everything outside IPV6_GLOBAL_UNICAST that none of these
 * names is denied with OUTSIDE_GLOBAL_UNICAST. UNWRAPPED_IPV6 prefixes are not in this table:
 * their addresses are judged as IPv4.
 */
export const DEFAULT_DENY_IPV6: readonly DefaultRange[] = Object.freeze([
  { cidr: '::/128', reason: 'unspecified' },
  { cidr: '::1/128', reason: 'loopback' },
  { cidr: '::/96', reason: 'ipv4-compatible' },
  { cidr: '64:ff9b:1::/48', reason: 'nat64-local' },
  { cidr: '100::/64', reason: 'discard' },
  { cidr: '5f00::/16', reason: 'srv6' },
  { cidr: 'fc00::/7', reason: 'unique-local' },
  { cidr: 'fe80::/10', reason: 'link-local' },
  { cidr: 'fec0::/10', reason: 'site-local' },
  { cidr: 'ff00::/8', reason: 'multicast' },
  // Inside 2000::/3:
  { cidr: '2001::/32', reason: 'teredo' },
  { cidr: '2001::/23', reason: 'ietf-protocol' },
  { cidr: '2001:db8::/32', reason: 'documentation' },
  { cidr: '2002::/16', reason: '6to4' },
  { cidr: '2620:4f:8000::/48', reason: 'as112' },
  { cidr: '3fff::/20', reason: 'documentation' },
]);

export const IPV6_GLOBAL_UNICAST = '2000::/3';
export const OUTSIDE_GLOBAL_UNICAST = 'not-global-unicast';

/** Judged as the embedded IPv4 address by every rule (see embeddedIPv4 in address.ts). */
export const UNWRAPPED_IPV6: readonly string[] = Object.freeze(['::ffff:0:0/96', '64:ff9b::/96']);

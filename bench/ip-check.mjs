// Measures IpRules.check() throughput. Needs the compiled output: npx tsc -p tsconfig.json
// Usage: node bench/ip-check.mjs [secondsPerCase=2]. Always exits 0 (informational).
import { createRequire } from 'node:module';

const TARGET_V4 = 5_000_000;
const seconds = Number(process.argv[2]) > 0 ? Number(process.argv[2]) : 2;

let IpRules;
try {
  ({ IpRules } = createRequire(import.meta.url)('../dist/ip/rules.js'));
} catch (err) {
  console.log(`ip-check: cannot load dist/ip/rules.js (run "npx tsc -p tsconfig.json" first): ${err.message}`);
  process.exit(0);
}

// Default table plus a few user entries, as a typical IpPolicy would have.
const rules = new IpRules({
  allow: ['10.1.0.0/16', '2001:db8:1::/48'],
  deny: ['203.0.113.7', '8.8.4.0/24', '2606:4700:10::/48'],
});

const cases = {
  ipv4: ['8.8.8.8', '1.1.1.1', '93.184.216.34', '142.250.185.78', '127.0.0.1', '10.1.2.3',
    '192.168.1.10', '172.217.16.14', '104.16.132.229', '255.255.255.255'],
  ipv6: ['2606:4700::1111', '2a00:1450:4001:82b::200e', '::1', 'fe80::1%eth0',
    '::ffff:127.0.0.1', '64:ff9b::808:808', '2001:db8:1::5', '2404:6800:4003:c00::71'],
};

function run(inputs) {
  const n = inputs.length;
  let denied = 0;
  // Warm up so the optimizing compiler has settled before timing.
  for (let i = 0; i < 200_000; i++) if (!rules.check(inputs[i % n]).allowed) denied++;
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  let calls = 0;
  let now = start;
  while (now < deadline) {
    // Batches keep the clock reads out of the measurement.
    for (let i = 0; i < 100_000; i++) if (!rules.check(inputs[i % n]).allowed) denied++;
    calls += 100_000;
    now = process.hrtime.bigint();
  }
  const rate = calls / (Number(now - start) / 1e9);
  return { rate, denied };
}

const fmt = (r) => `${(r / 1e6).toFixed(2)}M checks/s`;
const v4 = run(cases.ipv4);
console.log(`ipv4: ${fmt(v4.rate)} (${cases.ipv4.length} inputs, ${seconds}s)`);
const v6 = run(cases.ipv6);
console.log(`ipv6: ${fmt(v6.rate)} (${cases.ipv6.length} inputs, ${seconds}s)`);
const met = v4.rate >= TARGET_V4;
console.log(`ipv4 target >= ${TARGET_V4 / 1e6}M checks/s: ${met ? 'MET' : 'NOT MET'}`);
process.exitCode = 0;

#!/usr/bin/env node
// Prints the tables of a bench results file as Markdown, as README.md shows them:
//   node bench/to-markdown.mjs [bench/results/latest.json]
// One table per scenario (every client that ran, medians with their spreads), then the
// target checks. The README's tables are this output for the run it names.

import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? new URL('./results/latest.json', import.meta.url).pathname;
const result = JSON.parse(readFileSync(file, 'utf8'));

const int = (n) => Math.round(n).toLocaleString('en-US');
const spread = (p) => (p == null ? '' : ` [${Math.round(p)}%]`);
const ratio = (r) => (r == null ? '—' : `${r.toFixed(2)}x`);
const dec = (n, d = 1) => (n == null ? '—' : n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));

function row(cells) {
  return `| ${cells.join(' | ')} |`;
}

const out = [];
out.push(`Run: ${result.date.slice(0, 10)}, seed ${result.options.seed}, ${result.options.rounds} rounds, ` +
  `Node ${result.node}, libcurl ${[...new Set(Object.values(result.libcurl))].join(', ')}, server: ${result.server.description}.`);
out.push('Medians over the rounds; [n%] is the spread, (max - min) / median.');

for (const s of result.scenarios) {
  const entries = Object.entries(result.summary[s.id] ?? {});
  if (!entries.length) continue;
  out.push('');
  out.push(`**${s.id}**: ${s.count.toLocaleString('en-US')} × ${s.title}`);
  out.push('');
  if (s.latency) {
    out.push(row(['client', 'p50 µs', 'p99 µs', 'req/s', 'CPU µs/req', 'peak RSS MiB', 'p50 ÷ raw C', 'p50 ÷ undici']));
    out.push(row(Array(8).fill('---')));
  } else {
    out.push(row(['client', s.body === 'large' ? 'MiB/s' : 'req/s', 'CPU µs/req', 'peak RSS MiB', '÷ raw C', '÷ undici']));
    out.push(row(Array(6).fill('---')));
  }
  for (const [name, e] of entries) {
    if (e.status !== 'ok') {
      out.push(row([`\`${name}\``, `${e.status}: ${e.reason}`, ...Array(s.latency ? 6 : 4).fill('')]));
      continue;
    }
    const vsC = e.ratios?.rawC;
    const cName = vsC && vsC.reference !== 'raw-c' ? ` (of ${vsC.reference})` : '';
    const common = [`${dec(e.cpuUsPerReq)}${spread(e.cpuSpreadPct)}`, `${dec(e.peakRssMiB)}${spread(e.rssSpreadPct)}`];
    if (s.latency) {
      out.push(row([`\`${name}\``, `${dec(e.p50Us, 0)}${spread(e.p50SpreadPct)}`, `${dec(e.p99Us, 0)}${spread(e.p99SpreadPct)}`,
        `${int(e.rps)}${spread(e.rpsSpreadPct)}`, ...common, ratio(vsC?.ratio) + cName, ratio(e.ratios?.undici.ratio)]));
    } else {
      out.push(row([`\`${name}\``, `${int(e.rps)}${spread(e.rpsSpreadPct)}`, ...common, ratio(vsC?.ratio) + cName, ratio(e.ratios?.undici.ratio)]));
    }
  }
}

out.push('');
out.push('**Targets** (ratio of the medians; [min-max] of the per-round ratios):');
out.push('');
out.push(row(['client', 'target', 'limit', 'ratio', 'verdict']));
out.push(row(Array(5).fill('---')));
for (const t of result.targets) {
  const range = t.perRoundMin != null ? ` [${t.perRoundMin.toFixed(2)}-${t.perRoundMax.toFixed(2)}]` : '';
  const verdict = t.verdict === 'NOT met' ? '**NOT met**' : t.verdict;
  out.push(row([`\`${t.client}\``, t.label, `${t.op} ${t.limit}`, t.ratio != null ? `${t.ratio.toFixed(2)}x${range}` : '—',
    t.provisional ? `${verdict} (provisional: ${t.rounds} round${t.rounds === 1 ? "" : "s"})` : verdict]));
}
console.log(out.join('\n'));

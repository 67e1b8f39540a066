// The generated option/info types: wrong value types are compile errors, and
// the types promise exactly what setopt does at run time.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Easy, Multi } from '../dist/index.js';

/** `NAME: TYPE;` members of an interface in lib/generated/options.ts. */
function interfaceMembers(name: string): Array<[string, string]> {
  const source = fs.readFileSync(path.join(__dirname, '..', 'lib', 'generated', 'options.ts'), 'utf8');
  const start = source.indexOf(`export interface ${name} {`);
  const body = source.slice(start, source.indexOf('\n}', start));
  return [...body.matchAll(/^ {2}([A-Z0-9_]+): (.+);$/gm)].map((m) => [m[1] as string, m[2] as string]);
}

/** What setopt(name, value) does: 'ok', or the error's class name. */
function outcome(handle: { setopt(name: string, value: unknown): unknown }, name: string, value: unknown): string {
  try {
    handle.setopt(name, value);
    return 'ok';
  } catch (error) {
    return (error as Error).constructor.name;
  }
}

type Settable = { setopt(name: string, value: unknown): unknown; close(): void };

describe('TypeScript types', () => {
  it('accept right values and reject wrong ones (tsc on test/typecheck/fixture.ts)', () => {
    const tsc = require.resolve('typescript/bin/tsc');
    const project = path.join(__dirname, 'typecheck', 'tsconfig.json');
    const r = spawnSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8' });
    // An unused @ts-expect-error is itself an error (TS2578), so both directions are checked.
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 60_000);

  // Every option typed `never` is refused with a TypeError, whatever the value;
  // every option whose type has `| null` takes null, and one without refuses it.
  for (const [label, interfaceName, make] of [
    ['Easy', 'EasyOptionValueTypes', () => new Easy()],
    ['Multi', 'MultiOptionValueTypes', () => new Multi()],
  ] as Array<[string, string, () => Settable]>) {
    it(`${label}: setopt accepts null and refuses options exactly as ${interfaceName} says`, () => {
      const members = interfaceMembers(interfaceName);
      expect(members.length).toBeGreaterThan(label === 'Easy' ? 250 : 10);
      const wrong: string[] = [];
      for (const [name, type] of members) {
        const handle = make();
        try {
          if (type === 'never') {
            for (const value of [null, 1, {}, () => 0]) {
              if (outcome(handle, name, value) !== 'TypeError') wrong.push(`${name}: never, but ${String(value)} is not a TypeError`);
            }
          } else if (type !== 'unknown') {
            const nullResult = outcome(handle, name, null);
            const typedNull = type.split(' | ').includes('null');
            // A CurlError is libcurl's own verdict on this build, not the binding's.
            if (typedNull && nullResult !== 'ok' && nullResult !== 'CurlError') wrong.push(`${name}: typed null, got ${nullResult}`);
            if (!typedNull && nullResult !== 'TypeError') wrong.push(`${name}: not typed null, got ${nullResult}`);
          }
        } finally {
          handle.close();
        }
      }
      expect(wrong).toEqual([]);
    });
  }
});

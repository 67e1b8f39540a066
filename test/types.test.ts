// The generated option/info types: wrong value types are compile errors.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

describe('TypeScript types', () => {
  it('accept right values and reject wrong ones (tsc on test/typecheck/fixture.ts)', () => {
    const tsc = require.resolve('typescript/bin/tsc');
    const project = path.join(__dirname, 'typecheck', 'tsconfig.json');
    const r = spawnSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8' });
    // An unused @ts-expect-error is itself an error (TS2578), so both directions are checked.
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 60_000);
});

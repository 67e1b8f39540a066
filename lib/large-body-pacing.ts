// Keeps V8 13 and later (Node 24, 26) collecting large bodies in minor GCs.
//
// Why: a body of 64 KiB or more is an external Buffer over memory the native
// body pool reuses once V8 frees the Buffer (src/body_pool.h). V8 starts a
// minor GC for young ArrayBuffer memory only past twice its default largest
// semi-space. On V8 12 (Node 22) and older that is 32 MiB; V8 13 raised it to
// 128 MiB, and the external-memory limit starts a full GC after 64 MiB, first.
// So on Node 24 and 26 every body waited for a full GC: about twice the CPU
// per MiB and 1.4x the peak RSS of Node 20 for the same downloads.
//
// How: after each 32 MiB of large bodies, this runs the minor GC V8 12 would
// have run (about 0.3 ms with a small young generation). V8 offers that only
// through the `gc()` function of --expose-gc, so the function is taken once,
// from a context made while the flag is on, and the flag is put back.
// Filling the young generation with garbage instead starts the same GC, but
// V8 grows the young generation as GCs add up, and the fill with it.
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

/** Bodies from this size up come from the native pool (BodyPool::kMinBytes). */
export const POOLED_BODY_BYTES = 64 * 1024;

// Node 22's pace: small enough to stay under the external-memory limit, large
// enough that a body in flight is rarely alive at two minor GCs in a row
// (which would move it to the old generation, to wait for a full GC again).
const PACE_BYTES = 32 * 1024 * 1024;

type GcFunction = (options: { type: 'minor'; execution: 'sync' }) => void;

let needed = Number(process.versions.v8.split('.')[0]) >= 13;
let minorGc: GcFunction | undefined;
let sinceGc = 0;

/** Called with the size of each large body handed to JS. */
export function noteLargeBody(bytes: number): void {
  if (!needed) return;
  sinceGc += bytes;
  if (sinceGc < PACE_BYTES) return;
  sinceGc = 0;
  minorGc ??= takeGcFunction();
  try {
    if (minorGc === undefined) throw new Error('no gc()');
    minorGc({ type: 'minor', execution: 'sync' });
  } catch {
    needed = false;  // the runtime does not allow it: V8's own pacing it is
  }
}

function takeGcFunction(): GcFunction | undefined {
  const take = (): unknown => vm.runInNewContext('typeof gc === "function" ? gc : undefined');
  try {
    let gc = take();  // the program runs with --expose-gc already
    if (gc === undefined) {
      v8.setFlagsFromString('--expose-gc');
      try {
        gc = take();
      } finally {
        v8.setFlagsFromString('--no-expose-gc');
      }
    }
    return typeof gc === 'function' ? (gc as GcFunction) : undefined;
  } catch {
    return undefined;
  }
}

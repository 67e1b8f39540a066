// Keeps V8 13 and later (Node 24, 26) collecting large bodies in minor GCs.
//
// Why: a body of 64 KiB or more is an external Buffer over memory the native
// body pool reuses once V8 frees the Buffer (src/body_pool.h). V8 starts a
// minor GC for young ArrayBuffer memory only past twice its default largest
// semi-space. V8 12 (Node 22) and older start it after 32 MiB; V8 13 raised
// that to 128 MiB, and the external-memory limit starts a full GC after 64 MiB,
// first. So on Node 24 and 26 every body waited for a full GC: twice the CPU
// per MiB and 1.4x the RSS of Node 20 for the same downloads.
//
// How: after each 32 MiB of large bodies, the young generation is filled with
// short-lived arrays, which makes V8 run the minor GC it would have run on
// Node 22. That costs one allocation of the young generation's free space
// (about 2 MiB unless the program's own allocations grew it) per 32 MiB.
import { getHeapSpaceStatistics } from 'node:v8';

/** Bodies from this size up come from the native pool (BodyPool::kMinBytes). */
export const POOLED_BODY_BYTES = 64 * 1024;

const PACE_BYTES = 32 * 1024 * 1024;
// A young generation with more free space than this was grown by the
// program's own allocations, which start minor GCs often enough without help.
const MAX_FILL_BYTES = 16 * 1024 * 1024;
// Below V8's limit for a regular-sized (not large-object) array.
const CHUNK_ELEMENTS = 15_000;

const needed = Number(process.versions.v8.split('.')[0]) >= 13;
const taggedBytes = (process.config.variables as Record<string, unknown>)['v8_enable_pointer_compression'] ? 4 : 8;
const chunkBytes = CHUNK_ELEMENTS * taggedBytes;

let sinceFill = 0;
// Written so that no compiler can drop the allocations as unused.
const sink: { last: unknown } = { last: undefined };

/** Called with the size of each large body handed to JS. */
export function noteLargeBody(bytes: number): void {
  if (!needed) return;
  sinceFill += bytes;
  if (sinceFill < PACE_BYTES) return;
  sinceFill = 0;
  fillYoungGeneration();
}

function fillYoungGeneration(): void {
  const young = getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
  if (young === undefined || young.space_available_size > MAX_FILL_BYTES) return;
  // One chunk more than fits, so the last allocation cannot fit.
  for (let left = young.space_available_size + chunkBytes; left > 0; left -= chunkBytes) {
    sink.last = new Array(CHUNK_ELEMENTS);
  }
  sink.last = undefined;
}

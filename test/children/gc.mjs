// For children run with --expose-gc. Importing this checks that gc() is
// there (exit 2 otherwise); collect() runs full GCs with a loop turn after
// each, so that finalizers and weak callbacks get to run.
if (typeof globalThis.gc !== 'function') {
  process.stderr.write('gc() is not exposed\n');
  process.exit(2);
}

export async function collect() {
  for (let i = 0; i < 4; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

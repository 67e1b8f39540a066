import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Native addon + process-wide fd counting: one process per test file, not worker threads.
    pool: 'forks',
    poolOptions: {
      forks: {
        maxForks: 2,
      },
    },
    fileParallelism: true,
    testTimeout: 20_000,
    hookTimeout: 20_000,
    reporters: ['default'],
    server: {
      deps: {
        // The suites import the compiled package from ../dist/index.js: let Node
        // load it (and the .node addon it requires) instead of vite's transform.
        external: [/\/dist\//],
      },
    },
  },
});

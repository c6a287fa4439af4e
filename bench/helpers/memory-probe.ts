/**
 * Loaded into a process under measurement with `node --import <this file>` (bench/agent-memory.ts
 * starts the agent so): on SIGUSR2 it collects garbage and trims malloc's heaps (what the agent's
 * idle collector does), then writes process.memoryUsage() before and after the collection as JSON to $CTS_MEMORY_PROBE_OUT (and a heap snapshot beside it when
 * $CTS_MEMORY_PROBE_SNAPSHOT is set). The process itself is not changed otherwise.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { trimMalloc } from '../../src/agent/memory.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const out = process.env.CTS_MEMORY_PROBE_OUT;
let seq = 0;

if (out) {
  process.on('SIGUSR2', () => {
    void (async () => {
      const before = process.memoryUsage();
      // Twice more after a turn: weak references and finalizers settle.
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 50));
      }
      // What the agent's idle collector does after its collection (src/agent/memory.ts).
      trimMalloc();
      const after = process.memoryUsage();
      seq++;
      if (process.env.CTS_MEMORY_PROBE_SNAPSHOT) writeHeapSnapshot(`${out}.${seq}.heapsnapshot`);
      writeFileSync(`${out}.tmp`, JSON.stringify({ seq, before, after }));
      renameSync(`${out}.tmp`, out);
    })();
  });
}

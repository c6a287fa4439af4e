/** Runs every bench in bench/ (compiled), one process each so they do not disturb one another. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const benches = [
  'ebpf',
  'datapath',
  'conntrack-gc',
  'hubble',
  'hubble-pipeline',
  'relay',
  'cluster',
  'policy',
  'agent-memory',
  'cni',
  'maglev',
  'services',
  'nodeport',
  'overlay',
  'ui',
  'dns-proxy',
  'kafka',
  'l7-http',
];
for (const b of benches) {
  const file = fileURLToPath(new URL(`./${b}.js`, import.meta.url));
  if (!existsSync(file)) continue;
  const r = spawnSync(process.execPath, [file, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.status !== 0) console.log(`# bench ${b} exited ${r.status}`);
  console.log();
}

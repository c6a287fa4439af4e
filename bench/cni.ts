/**
 * CNI bench: ADD latency over 100 pods (p50/p99, measured around the plugin invocation exactly as a
 * runtime calls it), time from ADD to the pod answering ping from its node, and the agent's memory
 * with 0 and 100 pods. Figures only. Run as root: node dist/bench/cni.js
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseManifests } from '../src/k8s/objects.js';
import { apply, down, up } from '../src/lab/lab.js';
import { loadLab } from '../src/lab/state.js';

const N = Number(process.argv[2] ?? 100);
const lab = `bcni${randomBytes(2).toString('hex')}`;
const quiet = () => {};

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function podYaml(name: string): string {
  return `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, labels: {app: bench, idx: "${name}"}}\nspec:\n  containers: [{name: c, command: ["sleep", "infinity"]}]\n`;
}

try {
  await up({ name: lab, nodes: 1, log: quiet });
  const agentPid = loadLab(lab)!.nodes[0]!.agentPid!;
  await new Promise((r) => setTimeout(r, 500));
  const rss0 = rssMiB(agentPid);
  const adds: number[] = [];
  const reach: number[] = [];
  const node = loadLab(lab)!.nodes[0]!;
  for (let i = 0; i < N; i++) {
    const lines: string[] = [];
    await apply(lab, parseManifests(podYaml(`p${i}`)), (l) => lines.push(l));
    const m = /CNI ADD (\d+) ms/.exec(lines.join('\n'));
    if (m) adds.push(Number(m[1]));
    if (i % 5 === 0) {
      // ADD returned: how long until the pod answers from its node?
      // (upper bound: includes the rest of apply after ADD returned, and one ping process start)
      const ip = loadLab(lab)!.pods[`default/p${i}`]!.ipv4!;
      const tApplied = performance.now();
      for (let k = 0; k < 50; k++) {
        const r = spawnSync('nsenter', [
          `--net=/run/netns/${node.netns}`,
          'ping',
          '-c',
          '1',
          '-W',
          '1',
          '-q',
          ip,
        ]);
        if (r.status === 0) break;
      }
      reach.push(adds[adds.length - 1]! + (performance.now() - tApplied));
    }
  }
  const rss100 = rssMiB(agentPid);
  console.log(`# CNI bench (${N} pods, one node)`);
  console.log(
    `CNI ADD latency (plugin exec -> result)      p50 ${pct(adds, 50)} ms   p99 ${pct(adds, 99)} ms   max ${Math.max(...adds)} ms`,
  );
  console.log(
    `ADD start -> pod answers ping from its node  p50 ${pct(reach, 50).toFixed(0)} ms   p99 ${pct(reach, 99).toFixed(0)} ms  (${reach.length} samples)`,
  );
  console.log(
    `agent RSS                                    ${rss0.toFixed(1)} MiB with 0 pods, ${rss100.toFixed(1)} MiB with ${N} pods (+${((rss100 - rss0) / N).toFixed(2)} MiB/pod)`,
  );
  const tb = performance.now();
  for (let i = 0; i < 10; i++) spawnSync(process.execPath, ['-e', '0']);
  console.log(
    `baseline: bare node process start            ${((performance.now() - tb) / 10).toFixed(0)} ms (the plugin's floor)`,
  );
} finally {
  await down(lab, quiet);
}

/**
 * The policy routes take raw YAML as well as JSON documents (`cilium-ts policy import FILE` sends the
 * file's text); the YAML parser is loaded on the first such body. Served by the real policy cell on
 * a unix socket, through the typed client.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { CONTROL_PLANE_CELLS } from '../../../src/agent/agent.js';
import { type AgentCellExtras, ConfigT, LogT, TargetsT } from '../../../src/agent/cells/tokens.js';
import { defaultConfig } from '../../../src/agent/config.js';
import { Router } from '../../../src/agent/http.js';
import { AgentApi } from '../../../src/api/client.js';
import type { AgentApiError } from '../../../src/api/errors.js';
import type { DatapathTargets } from '../../../src/endpoint/datapath-state.js';
import { cell, Hive } from '../../../src/hive/hive.js';
import { fakeDatapath } from './fake-targets.js';

const YAML = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: web
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: web
  ingress:
    - toPorts:
        - ports:
            - port: "80"
              protocol: TCP
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db
  namespace: default
spec:
  podSelector: {}
  ingress: []
`;

describe('policy routes: YAML bodies', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cts-policy-yaml-'));
  let hive: Hive<AgentCellExtras>;
  let server: Server;
  let api: AgentApi;

  before(async () => {
    const targets = cell<DatapathTargets, AgentCellExtras>({
      name: 'fake-targets',
      needs: [],
      provides: TargetsT,
      build: () => ({ provide: fakeDatapath() }),
    });
    const cfg = defaultConfig('t', 'n1', {
      runDir: dir,
      stateDir: dir,
      nodeIPs: ['192.168.50.2'],
      podCidrV4: '10.210.0.0/24',
    });
    hive = new Hive<AgentCellExtras>(
      [...CONTROL_PLANE_CELLS, targets],
      [
        [ConfigT, cfg],
        [LogT, pino({ level: 'silent' })],
      ],
    );
    await hive.start();
    const router = new Router();
    for (const { inst } of hive.instances()) inst.routes?.(router);
    server = createServer((req, res) => void router.handle(req, res));
    const sock = join(dir, 'agent.sock');
    await new Promise<void>((r) => server.listen(sock, r));
    api = new AgentApi(sock);
  });

  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await hive.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it('imports every document of a multi-document YAML text', async () => {
    const r = await api.importPolicies({ text: YAML });
    assert.deepEqual([...r.policies].sort(), ['CiliumNetworkPolicy/default/web', 'NetworkPolicy/default/db']);
    const listed = await api.policies();
    assert.deepEqual(listed.policies.map((p) => `${p.kind}/${p.namespace}/${p.name}`).sort(), [
      'CiliumNetworkPolicy/default/web',
      'NetworkPolicy/default/db',
    ]);
  });

  it('answers 400 naming the YAML problem, and imports nothing', async () => {
    const before = (await api.policies()).policies.length;
    await assert.rejects(api.importPolicies({ text: 'kind: [unclosed' }), (e: AgentApiError) => {
      assert.equal(e.status, 400);
      assert.match(e.message, /request body/);
      return true;
    });
    assert.equal((await api.policies()).policies.length, before);
  });
});

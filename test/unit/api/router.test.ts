import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiError, Router, STREAMING } from '../../../src/agent/http.js';
import { AgentApi, AgentClient } from '../../../src/api/client.js';
import { AgentApiError, AgentUnreachableError } from '../../../src/api/errors.js';
import { type MonitorEvent, routes } from '../../../src/api/types.js';
import { CiliumTsError } from '../../../src/common/errors.js';
import { MapNotPinnedError } from '../../../src/datapath/errors.js';
import { NotSupportedError } from '../../../src/ebpf/index.js';
import { AddressConflictError, PoolExhaustedError } from '../../../src/ipam/index.js';
import { LabelParseError } from '../../../src/labels/index.js';
import { parsePolicies } from '../../../src/policy/index.js';

/** The agent's router on a real unix socket, with handlers throwing each kind of project error. */
describe('agent REST router: error codes become HTTP statuses', () => {
  let dir: string;
  let server: Server;
  let client: AgentClient;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cts-router-'));
    const r = new Router();
    r.on('GET', '/throw/label', () => {
      throw new LabelParseError('=x', 'empty key');
    });
    r.on('GET', '/throw/conflict', () => {
      throw new AddressConflictError('10.0.0.5', 'allocated to another pod');
    });
    r.on('GET', '/throw/exhausted', () => {
      throw new PoolExhaustedError('10.0.0.0/30', 4, 2n);
    });
    r.on('GET', '/throw/unpinned', () => {
      throw new MapNotPinnedError('/sys/fs/bpf/x/cilium_ipcache');
    });
    r.on('GET', '/throw/ebpf', () => {
      throw new NotSupportedError('tcx links', '6.6');
    });
    r.on('GET', '/throw/plain', () => {
      throw new Error('boom');
    });
    r.on('GET', '/throw/field', () => {
      throw new CiliumTsError('labels.app: must be a string', {
        code: 'invalid-argument',
        field: 'labels.app',
      });
    });
    r.on('GET', '/throw/api', () => {
      throw new ApiError(404, 'endpoint 9 not found');
    });
    r.on('POST', '/throw/policy', async (q) => {
      parsePolicies([await q.body()]);
      return {};
    });
    r.route(routes.identityGet, (q) => ({
      id: Number(q.params.id),
      labels: ['reserved:host'],
      scope: 'reserved' as const,
      refCount: 1,
    }));
    // A stream route: NDJSON lines of the kinds asked for, then the end (the agent's monitor never ends).
    r.route(routes.monitor, (q) => {
      const kinds = q.query.getAll('type');
      if (kinds.includes('bogus')) throw new ApiError(400, 'type: unknown event type "bogus"');
      q.res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      for (const kind of kinds) q.res.write(`${JSON.stringify({ kind, text: `a ${kind}`, flow: {} })}\n`);
      q.res.end();
      return STREAMING;
    });
    server = createServer((req, res) => void r.handle(req, res));
    await new Promise<void>((resolve) => server.listen(join(dir, 'agent.sock'), resolve));
    client = new AgentClient(join(dir, 'agent.sock'), 5000);
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  const failure = async (path: string, body?: unknown) => {
    const e = await client.call(body === undefined ? 'GET' : 'POST', path, body).then(
      () => assert.fail(`${path}: expected an error answer`),
      (err: unknown) => err,
    );
    assert.ok(e instanceof AgentApiError, `${path}: ${String(e)}`);
    return e;
  };

  it('maps each code to its status and sends the code back', async () => {
    const cases: [string, number, string][] = [
      ['/throw/label', 400, 'invalid-argument'],
      ['/throw/conflict', 409, 'conflict'],
      ['/throw/exhausted', 429, 'resource-exhausted'],
      ['/throw/unpinned', 503, 'unavailable'],
      ['/throw/ebpf', 501, 'not-supported'],
      ['/throw/plain', 500, 'internal'],
      ['/throw/api', 404, 'not-found'],
    ];
    for (const [path, status, code] of cases) {
      const e = await failure(path);
      assert.equal(e.status, status, path);
      assert.equal(e.code, code, path);
    }
    assert.match((await failure('/throw/conflict')).message, /cannot allocate 10\.0\.0\.5/);
  });

  it('sends the field and the details of an error', async () => {
    const e = await failure('/throw/field');
    assert.equal(e.field, 'labels.app');
    const p = await failure('/throw/policy', {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'x' },
      spec: { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: '99999' }] }] }] },
    });
    assert.equal(p.status, 400);
    assert.equal(p.code, 'invalid-argument');
    const issues = p.details as { path: string }[];
    assert.ok(issues.length > 0);
    assert.match(issues[0]!.path, /^spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port/);
  });

  it('answers bad JSON, unknown paths and wrong methods with client-error codes', async () => {
    const bad = await failure('/throw/policy', '{not json');
    assert.equal(bad.status, 400);
    assert.match(bad.message, /not valid JSON/);
    const none = await failure('/v1/nothing');
    assert.equal(none.status, 404);
    assert.equal(none.code, 'not-found');
    const method = await client.call('DELETE', '/throw/plain').catch((e: unknown) => e);
    assert.ok(method instanceof AgentApiError);
    assert.equal(method.status, 405);
  });

  it('serves a typed route and the typed client reads it', async () => {
    const api = new AgentApi(client);
    assert.deepEqual(await api.identity(1), {
      id: 1,
      labels: ['reserved:host'],
      scope: 'reserved',
      refCount: 1,
    });
  });

  it('streams NDJSON events to the typed client; an error answer rejects instead of streaming', async () => {
    const api = new AgentApi(client);
    const got: MonitorEvent[] = [];
    await api.monitor({ type: ['drop', 'trace'] }, (e) => got.push(e));
    assert.deepEqual(
      got.map((e) => [e.kind, e.text]),
      [
        ['drop', 'a drop'],
        ['trace', 'a trace'],
      ],
    );
    const e = await client.stream('/v1/monitor?type=bogus', () => assert.fail('no events')).catch((x) => x);
    assert.ok(e instanceof AgentApiError);
    assert.deepEqual([e.status, e.code], [400, 'invalid-argument']);
  });

  it('a missing socket is unavailable, not an API answer', async () => {
    const e = await new AgentApi(join(dir, 'none.sock')).status().catch((x: unknown) => x);
    assert.ok(e instanceof AgentUnreachableError);
    assert.equal(e.code, 'unavailable');
  });
});

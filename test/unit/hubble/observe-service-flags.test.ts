import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { buildFilters, observeRequest, registerHubbleCommands } from '../../../src/cli/hubble.js';

const e = (flag: string, value: string, negated = false) => ({ flag, value, negated });

describe('hubble observe: --service, --from-service, --to-service', () => {
  it('--service matches either side (two filters, OR); --from/--to-service one side', () => {
    assert.deepEqual(buildFilters([e('service', 'deathstar')]).whitelist, [
      { source_service: ['deathstar'] },
      { destination_service: ['deathstar'] },
    ]);
    assert.deepEqual(
      buildFilters([
        e('to-service', 'kube-system/kube-dns'),
        e('to-service', 'deathstar'),
        e('protocol', 'udp'),
      ]).whitelist,
      [{ destination_service: ['kube-system/kube-dns', 'deathstar'], protocol: ['udp'] }],
    );
    assert.deepEqual(buildFilters([e('from-service', 'deathstar'), e('to-pod', 'tiefighter')]).whitelist, [
      { source_service: ['deathstar'], destination_pod: ['default/tiefighter'] },
    ]);
  });

  it('--not sends the next service flag to the blacklist', () => {
    assert.deepEqual(buildFilters([e('to-service', 'deathstar', true), e('verdict', 'DROPPED')]), {
      whitelist: [{ verdict: ['DROPPED'] }],
      blacklist: [{ destination_service: ['deathstar'] }],
    });
    assert.deepEqual(buildFilters([e('service', 'kube-system/kube-dns', true)]).blacklist, [
      { source_service: ['kube-system/kube-dns'] },
      { destination_service: ['kube-system/kube-dns'] },
    ]);
  });

  it('namespace flags complete service names instead of adding a namespace-only pod filter', () => {
    assert.deepEqual(buildFilters([e('namespace', 'empire'), e('service', 'deathstar')]).whitelist, [
      { source_service: ['empire/deathstar'] },
      { destination_service: ['empire/deathstar'] },
    ]);
    assert.deepEqual(
      buildFilters([e('from-namespace', 'kube-system'), e('from-service', 'kube-dns')]).whitelist,
      [{ source_service: ['kube-system/kube-dns'] }],
    );
    assert.deepEqual(
      buildFilters([e('to-namespace', 'a'), e('to-namespace', 'b'), e('to-service', 'web')]).whitelist,
      [{ destination_service: ['a/web', 'b/web'] }],
    );
    // --service with --from-namespace: the source-side filter gets the namespace in its service name,
    // the destination-side filter a namespace-only source pod filter (as upstream builds them)
    assert.deepEqual(buildFilters([e('service', 'web'), e('from-namespace', 'a')]).whitelist, [
      { source_service: ['a/web'] },
      { destination_service: ['web'], source_pod: ['a/'] },
    ]);
    // without service flags namespaces still filter pods
    assert.deepEqual(buildFilters([e('from-namespace', 'a')]).whitelist, [{ source_pod: ['a/'] }]);
  });

  it('conflicting flags and namespaces are refused', () => {
    assert.throws(
      () => buildFilters([e('service', 'a'), e('to-service', 'b')]),
      /--service and --to-service cannot be combined/,
    );
    assert.throws(() => buildFilters([e('namespace', 'a'), e('from-service', 'b')]), /cannot be combined/);
    assert.throws(
      () => buildFilters([e('from-namespace', 'a'), e('from-service', 'b/web')]),
      /source_service: namespace conflict: "a" does not contain "b\/web"/,
    );
    // a service name in the flag's own namespace is fine
    assert.deepEqual(buildFilters([e('to-namespace', 'b'), e('to-service', 'b/web')]).whitelist, [
      { destination_service: ['b/web'] },
    ]);
  });

  it('the flags are registered on observe, spelled as hubble spells them, and reach the request', async () => {
    const program = new Command().exitOverride();
    const hubble = registerHubbleCommands(program, { out: () => {}, err: () => {} });
    const observe = hubble.commands.find((c) => c.name() === 'observe')!;
    const longs = observe.options.map((o) => o.long);
    for (const f of ['--service', '--from-service', '--to-service']) assert.ok(longs.includes(f), f);
    let seen: Record<string, unknown> = {};
    observe.action(function (this: Command) {
      seen = this.opts();
    });
    await program.parseAsync(
      ['hubble', 'observe', '--not', '--to-service', 'deathstar', '--from-service', 'kube-system/kube-dns'],
      { from: 'user' },
    );
    assert.deepEqual(seen['toService'], ['deathstar']);
    assert.deepEqual(seen['fromService'], ['kube-system/kube-dns']);
    const req = observeRequest({ output: 'compact' }, [
      e('to-service', 'deathstar', true),
      e('from-service', 'kube-system/kube-dns'),
    ]);
    assert.deepEqual(req.whitelist, [{ source_service: ['kube-system/kube-dns'] }]);
    assert.deepEqual(req.blacklist, [{ destination_service: ['deathstar'] }]);
  });
});

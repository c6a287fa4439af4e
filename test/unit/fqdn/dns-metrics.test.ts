import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HubbleMetrics, MetricsConfigError } from '../../../src/hubble/metrics.js';
import type { DNS, Flow, Verdict } from '../../../src/hubble/types.js';

function dnsFlow(verdict: Verdict, reply: boolean, dns: DNS): Flow {
  return {
    time: '2026-01-01T00:00:00Z',
    verdict,
    Type: 'L7',
    event_type: { type: 129 },
    is_reply: reply,
    source: { namespace: 'default', pod_name: 'client' },
    l7: { type: reply ? 'RESPONSE' : 'REQUEST', dns },
  };
}

describe('hubble dns metrics', () => {
  it('counts queries, refused queries as "Policy denied", responses by rcode and IPs, response types', async () => {
    const m = new HubbleMetrics({ metrics: ['dns'] });
    m.processFlow(dnsFlow('FORWARDED', false, { query: 'a.example.com.', qtypes: ['A'] }));
    m.processFlow(
      dnsFlow('FORWARDED', true, {
        query: 'a.example.com.',
        qtypes: ['A'],
        rcode: 0,
        ips: ['192.0.2.1', '192.0.2.2'],
        rrtypes: ['A'],
      }),
    );
    m.processFlow(dnsFlow('FORWARDED', true, { query: 'b.example.com.', qtypes: ['A'], rcode: 3 }));
    m.processFlow(dnsFlow('DROPPED', false, { query: 'evil.org.', qtypes: ['A'], rcode: 5 }));
    m.processFlow({ ...dnsFlow('FORWARDED', false, {}), l7: { type: 'REQUEST' } });
    const text = await m.registry.metrics();
    assert.match(text, /hubble_dns_queries_total\{rcode="",qtypes="A",ips_returned="0"\} 1/);
    assert.match(text, /hubble_dns_queries_total\{rcode="Policy denied",qtypes="A",ips_returned="0"\} 1/);
    assert.match(text, /hubble_dns_responses_total\{rcode="No Error",qtypes="A",ips_returned="2"\} 1/);
    assert.match(
      text,
      /hubble_dns_responses_total\{rcode="Non-Existent Domain",qtypes="A",ips_returned="0"\} 1/,
    );
    assert.match(text, /hubble_dns_response_types_total\{type="A",qtypes="A"\} 1/);
  });

  it('options: query label, ignoreAAAA, contexts; unknown flags refused', async () => {
    const m = new HubbleMetrics({ metrics: ['dns:query;ignoreAAAA;sourceContext=pod'] });
    m.processFlow(dnsFlow('FORWARDED', false, { query: 'a.example.com.', qtypes: ['A'] }));
    m.processFlow(dnsFlow('FORWARDED', false, { query: 'a.example.com.', qtypes: ['AAAA'] }));
    const text = await m.registry.metrics();
    assert.match(
      text,
      /hubble_dns_queries_total\{source="default\/client",rcode="",qtypes="A",ips_returned="0",query="a.example.com."\} 1/,
    );
    assert.doesNotMatch(text, /qtypes="AAAA"/);
    assert.throws(() => new HubbleMetrics({ metrics: ['dns:bogus'] }), MetricsConfigError);
    assert.throws(() => new HubbleMetrics({ metrics: ['drop:query'] }), MetricsConfigError);
  });
});

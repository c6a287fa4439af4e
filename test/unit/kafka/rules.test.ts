import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type compileKafkaRule,
  compileKafkaRules,
  type KafkaRequest,
  KafkaRuleError,
  kafkaAllowed,
} from '../../../src/proxy/kafka/index.js';

const req = (apiKey: number, topics: string[] | null, o: Partial<KafkaRequest> = {}): KafkaRequest => ({
  apiKey,
  apiVersion: 3,
  correlationId: 1,
  clientId: 'client',
  topics,
  topicPartitions: (topics ?? []).map((topic) => ({ topic, partitions: [0] })),
  ...o,
});

describe('kafka rules', () => {
  it('role produce expands to produce, metadata and apiversions; consume to the consumer keys', () => {
    const produce = compileKafkaRules([{ role: 'produce' }]);
    assert.deepEqual(
      [0, 1, 2, 3, 8, 18].filter((k) => kafkaAllowed(produce, req(k, []))),
      [0, 3, 18],
    );
    const consume = compileKafkaRules([{ role: 'Consume' }]);
    const keys = Array.from({ length: 40 }, (_, k) => k).filter((k) => kafkaAllowed(consume, req(k, [])));
    assert.deepEqual(keys, [1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18]);
  });

  it('apiKey by name (case-insensitive), apiVersion and clientID are ANDed', () => {
    const rules = compileKafkaRules([{ apiKey: 'Produce', apiVersion: '7', clientID: 'hq' }]);
    assert.equal(kafkaAllowed(rules, req(0, ['t'], { apiVersion: 7, clientId: 'hq' })), true);
    assert.equal(kafkaAllowed(rules, req(0, ['t'], { apiVersion: 6, clientId: 'hq' })), false);
    assert.equal(kafkaAllowed(rules, req(0, ['t'], { apiVersion: 7, clientId: 'other' })), false);
    assert.equal(kafkaAllowed(rules, req(1, ['t'], { apiVersion: 7, clientId: 'hq' })), false);
    assert.equal(kafkaAllowed(compileKafkaRules([{ apiKey: 'offsets' }]), req(2, ['t'])), true);
  });

  it('every topic of a request must be allowed, possibly by different rules', () => {
    const rules = compileKafkaRules([
      { role: 'produce', topic: 'deathstar-plans' },
      { role: 'produce', topic: 'empire-announce' },
    ]);
    assert.equal(kafkaAllowed(rules, req(0, ['deathstar-plans'])), true);
    assert.equal(kafkaAllowed(rules, req(0, ['deathstar-plans', 'empire-announce'])), true);
    assert.equal(kafkaAllowed(rules, req(0, ['deathstar-plans', 'rebels'])), false);
    assert.equal(kafkaAllowed(rules, req(1, ['deathstar-plans'])), false);
  });

  it('a topic rule matches requests naming no topic, never undecoded ones', () => {
    const rules = compileKafkaRules([{ role: 'consume', topic: 'a' }]);
    assert.equal(kafkaAllowed(rules, req(18, [])), true);
    assert.equal(kafkaAllowed(rules, req(12, [])), true);
    assert.equal(kafkaAllowed(rules, req(1, null)), false);
    // A rule without topic allows an undecoded request of its keys.
    assert.equal(kafkaAllowed(compileKafkaRules([{ role: 'consume' }]), req(1, null)), true);
  });

  it('no rules allow nothing; an empty rule allows everything', () => {
    assert.equal(kafkaAllowed([], req(18, [])), false);
    assert.equal(kafkaAllowed(compileKafkaRules([{}]), req(0, null)), true);
  });

  it('bad rules are refused naming the field', () => {
    const bad: Array<[Parameters<typeof compileKafkaRule>[0], RegExp]> = [
      [{ role: 'produce', apiKey: 'fetch' }, /kafka\[0\]: role and apiKey/],
      [{ role: 'admin' }, /kafka\[0\]\.role: must be produce or consume/],
      [{ apiKey: 'nope' }, /kafka\[0\]\.apiKey: unknown API key "nope"/],
      [{ apiVersion: 'x1' }, /kafka\[0\]\.apiVersion/],
      [{ apiVersion: '99999' }, /kafka\[0\]\.apiVersion/],
      [{ topic: 'a/b' }, /kafka\[0\]\.topic/],
      [{ topic: 'x'.repeat(256) }, /kafka\[0\]\.topic/],
    ];
    for (const [input, re] of bad) {
      assert.throws(
        () => compileKafkaRules([input]),
        (e: unknown) => e instanceof KafkaRuleError && re.test(e.message),
        JSON.stringify(input).slice(0, 60),
      );
    }
  });
});

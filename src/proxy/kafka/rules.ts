/**
 * Kafka L7 rules as upstream defines them (pkg/policy/api/kafka): `role` (produce|consume) or `apiKey`
 * (a name), `apiVersion`, `clientID`, `topic`. Fields of one rule are ANDed, the rules of a port ORed.
 * A request naming several topics is allowed only if one rule allows each of its topics. A topic rule
 * matches a request that names no topic (ApiVersions, group requests, Metadata for all topics), as
 * upstream, so a topic-scoped role keeps its handshake; it never matches a request whose topics the
 * proxy could not decode.
 */
import { CiliumTsError } from '../../common/errors.js';
import {
  API_KEY_BY_NAME,
  type KafkaRuleFields,
  kafkaRuleProblems,
  ROLE_API_KEYS,
} from '../../policy/kafka.js';
import type { KafkaRequest } from './request.js';

/** The policy form of one rule (the `rules.kafka` entries of a port rule). */
export type KafkaRuleInput = KafkaRuleFields;

export class KafkaRuleError extends CiliumTsError {
  override readonly name = 'KafkaRuleError';
  override readonly code = 'invalid-argument';
  constructor(field: string, message: string) {
    super(`${field}: ${message}`, { field });
  }
}

export interface KafkaRule {
  /** Allowed API keys; null: any. */
  readonly apiKeys: ReadonlySet<number> | null;
  readonly apiVersion: number | null;
  readonly clientId: string | null;
  readonly topic: string | null;
}

/** Checks and compiles one rule; `field` prefixes error messages (e.g. "rules.kafka[0]"). */
export function compileKafkaRule(input: KafkaRuleInput, field = 'kafka'): KafkaRule {
  const problem = kafkaRuleProblems(input)[0];
  if (problem) throw new KafkaRuleError(problem[0] ? `${field}.${problem[0]}` : field, problem[1]);
  let apiKeys: Set<number> | null = null;
  if (input.role !== undefined)
    apiKeys = new Set(ROLE_API_KEYS[input.role.toLowerCase() as 'produce' | 'consume']);
  if (input.apiKey !== undefined) apiKeys = new Set([API_KEY_BY_NAME[input.apiKey.toLowerCase()] as number]);
  const apiVersion =
    input.apiVersion === undefined || input.apiVersion === '' ? null : Number(input.apiVersion);
  const topic = input.topic === undefined || input.topic === '' ? null : input.topic;
  const clientId = input.clientID === undefined || input.clientID === '' ? null : input.clientID;
  return { apiKeys, apiVersion, clientId, topic };
}

/** Whether the rule allows the request's key, version and client (topics aside). */
function matchesRequest(rule: KafkaRule, req: KafkaRequest): boolean {
  if (rule.apiKeys !== null && !rule.apiKeys.has(req.apiKey)) return false;
  if (rule.apiVersion !== null && rule.apiVersion !== req.apiVersion) return false;
  if (rule.clientId !== null && rule.clientId !== req.clientId) return false;
  return true;
}

/** The verdict for one request under the rules of its port. An empty rule list allows nothing. */
export function kafkaAllowed(rules: readonly KafkaRule[], req: KafkaRequest): boolean {
  const candidates = rules.filter((r) => matchesRequest(r, req));
  if (candidates.length === 0) return false;
  if (candidates.some((r) => r.topic === null)) return true;
  if (req.topics === null) return false;
  if (req.topics.length === 0) return true;
  return req.topics.every((t) => candidates.some((r) => r.topic === t));
}

/** Compiles a port's rule list; the first bad rule throws with its index in the field name. */
export function compileKafkaRules(inputs: readonly KafkaRuleInput[], field = 'kafka'): KafkaRule[] {
  return inputs.map((r, i) => compileKafkaRule(r, `${field}[${i}]`));
}

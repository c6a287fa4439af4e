/**
 * Kafka API keys: the numbers the filter deals with, and names for records (policy's names, from
 * src/policy/kafka.ts).
 */
import { API_KEY_BY_NAME } from '../../policy/kafka.js';

export { API_KEY_BY_NAME, ROLE_API_KEYS } from '../../policy/kafka.js';

const NAME_BY_KEY = new Map(Object.entries(API_KEY_BY_NAME).map(([n, k]) => [k, n]));

/** The policy/Hubble name of an API key ("produce"), or its number for keys policy cannot name. */
export function apiKeyName(key: number): string {
  return NAME_BY_KEY.get(key) ?? String(key);
}

export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  ApiVersions: 18,
  CreateTopics: 19,
} as const;

/** Error codes the proxy writes or reports. */
export const KafkaError = {
  None: 0,
  TopicAuthorizationFailed: 29,
} as const;

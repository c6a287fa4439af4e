/**
 * Kafka API keys as policy names them (upstream pkg/policy/api/kafka: lower-case names, `offsets` is
 * ListOffsets) and the keys each role implies.
 */

export const API_KEY_BY_NAME: Readonly<Record<string, number>> = {
  produce: 0,
  fetch: 1,
  offsets: 2,
  metadata: 3,
  leaderandisr: 4,
  stopreplica: 5,
  updatemetadata: 6,
  controlledshutdown: 7,
  offsetcommit: 8,
  offsetfetch: 9,
  findcoordinator: 10,
  joingroup: 11,
  heartbeat: 12,
  leavegroup: 13,
  syncgroup: 14,
  describegroups: 15,
  listgroups: 16,
  saslhandshake: 17,
  apiversions: 18,
  createtopics: 19,
  deletetopics: 20,
  deleterecords: 21,
  initproducerid: 22,
  offsetforleaderepoch: 23,
  addpartitionstotxn: 24,
  addoffsetstotxn: 25,
  endtxn: 26,
  writetxnmarkers: 27,
  txnoffsetcommit: 28,
  describeacls: 29,
  createacls: 30,
  deleteacls: 31,
  describeconfigs: 32,
  alterconfigs: 33,
};

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

/** Upstream's role expansion: produce → produce, metadata, apiversions; consume → fetch … syncgroup. */
export const ROLE_API_KEYS: Readonly<Record<'produce' | 'consume', readonly number[]>> = {
  produce: [0, 3, 18],
  consume: [1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18],
};

/** Error codes the proxy writes or reports. */
export const KafkaError = {
  None: 0,
  TopicAuthorizationFailed: 29,
} as const;

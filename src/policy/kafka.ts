/**
 * Kafka L7 rules as policy states them (upstream pkg/policy/api/kafka): API key names (lower case,
 * `offsets` is ListOffsets), the keys each role implies, and the checks a rule must pass. The proxy
 * (src/proxy/kafka) compiles checked rules into its matcher.
 */

/** The fields of one `rules.kafka` entry. */
export interface KafkaRuleFields {
  readonly role?: string;
  readonly apiKey?: string;
  readonly apiVersion?: string;
  readonly clientID?: string;
  readonly topic?: string;
}

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

/** Upstream's role expansion: produce → produce, metadata, apiversions; consume → fetch … syncgroup. */
export const ROLE_API_KEYS: Readonly<Record<'produce' | 'consume', readonly number[]>> = {
  produce: [0, 3, 18],
  consume: [1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18],
};

const TOPIC_RE = /^[a-zA-Z0-9._-]+$/;

/** What is wrong with a rule: [field of the rule or undefined for the rule itself, message]. */
export function kafkaRuleProblems(r: KafkaRuleFields): Array<[keyof KafkaRuleFields | undefined, string]> {
  const out: Array<[keyof KafkaRuleFields | undefined, string]> = [];
  if (r.role !== undefined && r.apiKey !== undefined)
    out.push([undefined, 'role and apiKey cannot both be set']);
  if (r.role !== undefined && !['produce', 'consume'].includes(r.role.toLowerCase()))
    out.push(['role', `must be produce or consume, got ${JSON.stringify(r.role)}`]);
  if (r.apiKey !== undefined && API_KEY_BY_NAME[r.apiKey.toLowerCase()] === undefined)
    out.push(['apiKey', `unknown API key ${JSON.stringify(r.apiKey)}`]);
  if (
    r.apiVersion !== undefined &&
    r.apiVersion !== '' &&
    (!/^[0-9]{1,5}$/.test(r.apiVersion) || Number(r.apiVersion) > 32767)
  )
    out.push(['apiVersion', `must be a version number 0-32767, got ${JSON.stringify(r.apiVersion)}`]);
  if (r.topic !== undefined && r.topic !== '' && (r.topic.length > 255 || !TOPIC_RE.test(r.topic)))
    out.push(['topic', `must be 1-255 characters of [a-zA-Z0-9._-], got ${JSON.stringify(r.topic)}`]);
  return out;
}

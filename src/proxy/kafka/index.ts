export { API_KEY_BY_NAME, ApiKey, apiKeyName, KafkaError, ROLE_API_KEYS } from './apikeys.js';
export { type KafkaConnection, runKafkaConnection } from './connection.js';
export {
  DEFAULT_MAX_REQUEST_BYTES,
  type FilterOutput,
  FrameSplitter,
  KafkaFilter,
  type KafkaFilterOptions,
  type KafkaRecord,
  MAX_OUTSTANDING,
} from './filter.js';
export {
  decodeRequest,
  expectsResponse,
  type KafkaRequest,
  MAX_DECODED_VERSION,
  responseCorrelationId,
  type TopicPartitions,
} from './request.js';
export { buildErrorResponse, capApiVersions } from './response.js';
export {
  compileKafkaRule,
  compileKafkaRules,
  type KafkaRule,
  KafkaRuleError,
  type KafkaRuleInput,
  kafkaAllowed,
} from './rules.js';
export { type KafkaTcpProxy, type KafkaTcpProxyOptions, startKafkaTcpProxy } from './tcp-proxy.js';
export { KafkaDecodeError, Reader, Writer } from './wire.js';

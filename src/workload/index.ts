export {
  type ProbeRequest,
  ProbeRequestError,
  type ProbeResult,
  type ProberOptions,
  type ProberServer,
  startProber,
} from './prober.js';
export {
  banner,
  type ConnectOptions,
  type ConnectResult,
  connect,
  parseDuration,
  parsePorts,
  parseTarget,
  type ServeOptions,
  serve,
  WorkloadListenError,
  WorkloadNotSupportedError,
  type WorkloadProtocol,
  type WorkloadServer,
  WorkloadUsageError,
} from './workload.js';

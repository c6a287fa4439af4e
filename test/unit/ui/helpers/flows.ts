/**
 * Flows as the Observer API hands them out (upstream's JSON form), for the UI's tests and bench:
 * pods with their identity labels as the agent attaches them, reserved endpoints, L4 and L7.
 */
import type { Endpoint, Verdict } from '../../../../src/hubble/types.js';
import type { UiFlow } from '../../../../src/hubble/ui/model.js';

export function pod(
  namespace: string,
  name: string,
  labels: Record<string, string>,
  identity = 1000,
): Endpoint {
  return {
    ID: identity - 900,
    identity,
    namespace,
    pod_name: name,
    labels: [
      ...Object.entries(labels).map(([k, v]) => `k8s:${k}=${v}`),
      `k8s:io.kubernetes.pod.namespace=${namespace}`,
    ].sort(),
  };
}

export const WORLD: Endpoint = { identity: 2, labels: ['reserved:world'] };
export const HOST: Endpoint = { identity: 1, labels: ['reserved:host'] };
export const REMOTE_NODE: Endpoint = { identity: 6, labels: ['reserved:remote-node'] };

export interface FlowSpec {
  src: Endpoint;
  dst: Endpoint;
  port?: number;
  /** Source port (default 40000 + a counter). */
  sport?: number;
  proto?: 'TCP' | 'UDP' | 'ICMPv4';
  verdict?: Verdict;
  drop?: string;
  reply?: boolean;
  time?: string;
  http?: { method?: string; url?: string; code?: number };
  srcIp?: string;
  dstIp?: string;
  destinationNames?: string[];
}

let n = 0;

export function flow(s: FlowSpec): UiFlow {
  n++;
  const proto = s.proto ?? 'TCP';
  const port = s.port ?? 80;
  const f: UiFlow = {
    time: s.time ?? new Date(Date.UTC(2026, 0, 1, 0, 0, 0, n % 1000)).toISOString().replace('Z', '000000Z'),
    uuid: `flow-${n}`,
    verdict: s.verdict ?? 'FORWARDED',
    IP: { source: s.srcIp ?? '10.200.0.3', destination: s.dstIp ?? '10.200.0.6', ipVersion: 'IPv4' },
    l4:
      proto === 'ICMPv4'
        ? { ICMPv4: { type: port } }
        : proto === 'UDP'
          ? { UDP: { source_port: s.sport ?? 40000 + (n % 1000), destination_port: port } }
          : {
              TCP: {
                source_port: s.sport ?? 40000 + (n % 1000),
                destination_port: port,
                flags: { SYN: true },
              },
            },
    source: s.src,
    destination: s.dst,
    Type: s.http ? 'L7' : 'L3_L4',
    node_name: 'default/node1',
    event_type: { type: s.http ? 129 : 4 },
    is_reply: s.reply ?? false,
  };
  if (s.verdict === 'DROPPED') {
    f.drop_reason = 133;
    f.drop_reason_desc = s.drop ?? 'POLICY_DENIED';
  }
  if (s.http) f.l7 = { type: s.http.code ? 'RESPONSE' : 'REQUEST', http: s.http };
  if (s.destinationNames) f.destination_names = s.destinationNames;
  return f;
}

export const starwars = {
  deathstar: (i = 0) =>
    pod(
      'default',
      `deathstar-6c94dcc57b-${['abcde', 'fghij'][i % 2]}`,
      {
        org: 'empire',
        class: 'deathstar',
        'app.kubernetes.io/name': 'deathstar',
        'pod-template-hash': '6c94dcc57b',
      },
      1003,
    ),
  tiefighter: () =>
    pod(
      'default',
      'tiefighter',
      { org: 'empire', class: 'tiefighter', 'app.kubernetes.io/name': 'tiefighter' },
      1001,
    ),
  xwing: () =>
    pod('default', 'xwing', { org: 'alliance', class: 'xwing', 'app.kubernetes.io/name': 'xwing' }, 1002),
};

/** Upstream's Star Wars L7 rule: only empire ships, only POST /v1/request-landing. */
export const STARWARS_L7_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: rule1, namespace: default}
spec:
  endpointSelector: {matchLabels: {org: empire, class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules: {http: [{method: POST, path: /v1/request-landing}]}
`;

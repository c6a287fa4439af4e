/**
 * Numbering facts shared with upstream Cilium/Hubble and with bpf/lib/defs.h:
 * event types, trace observation points, drop reasons, policy match types,
 * ICMP type names. Pure data, no I/O.
 */
import type { TraceObservationPoint, TraceReason, TrafficDirection, Verdict } from './types.js';

/** First byte of a datapath event (`event_hdr.type`, CILIUM_NOTIFY_* in defs.h). */
export const NotifyType = {
  DROP: 1,
  DEBUG: 2,
  CAPTURE: 3,
  TRACE: 4,
  /** CILIUM_NOTIFY_POLICY_VERDICT (upstream's number; bpf/lib/defs.h uses it too). */
  POLICY_VERDICT: 5,
  /** The number earlier cilium-ts datapath builds used; same layout, still accepted. */
  POLICY_VERDICT_CTS: 9,
} as const;

/**
 * Upstream `CiliumEventType.type` numbers (pkg/monitor/api MessageType*), what
 * flows report and what `--type` filters use.
 */
export const MessageType = {
  UNSPEC: 0,
  DROP: 1,
  DEBUG: 2,
  CAPTURE: 3,
  TRACE: 4,
  POLICY_VERDICT: 5,
  REC_CAPTURE: 6,
  TRACE_SOCK: 7,
  ACCESS_LOG: 129,
  AGENT: 130,
} as const;

/** `hubble observe --type` names → message type numbers. */
export const MessageTypeNames: Record<string, number> = {
  drop: MessageType.DROP,
  debug: MessageType.DEBUG,
  capture: MessageType.CAPTURE,
  trace: MessageType.TRACE,
  'policy-verdict': MessageType.POLICY_VERDICT,
  'recorder-capture': MessageType.REC_CAPTURE,
  'trace-sock': MessageType.TRACE_SOCK,
  l7: MessageType.ACCESS_LOG,
  agent: MessageType.AGENT,
};

/** TRACE_TO_* / TRACE_FROM_* (defs.h) → upstream short names (pkg/monitor/api). */
export const TraceObsPointNames: Record<number, string> = {
  0: 'to-endpoint',
  1: 'to-proxy',
  2: 'to-host',
  3: 'to-stack',
  4: 'to-overlay',
  5: 'from-endpoint',
  6: 'from-proxy',
  7: 'from-host',
  8: 'from-stack',
  9: 'from-overlay',
  10: 'from-network',
  11: 'to-network',
  12: 'from-crypto',
  13: 'to-crypto',
};

/** TRACE_* (defs.h) → flow.TraceObservationPoint (0 is reported as TO_ENDPOINT, as upstream does). */
export const TraceObsPointEnum: Record<number, TraceObservationPoint> = {
  0: 'TO_ENDPOINT',
  1: 'TO_PROXY',
  2: 'TO_HOST',
  3: 'TO_STACK',
  4: 'TO_OVERLAY',
  5: 'FROM_ENDPOINT',
  6: 'FROM_PROXY',
  7: 'FROM_HOST',
  8: 'FROM_STACK',
  9: 'FROM_OVERLAY',
  10: 'FROM_NETWORK',
  11: 'TO_NETWORK',
  12: 'FROM_CRYPTO',
  13: 'TO_CRYPTO',
};

/** TRACE_REASON_* (defs.h) → flow.TraceReason. */
export const TraceReasonEnum: Record<number, TraceReason> = {
  0: 'NEW',
  1: 'ESTABLISHED',
  2: 'REPLY',
  3: 'RELATED',
};
export const TRACE_REASON_CT_REPLY = 2;
/** Upstream marks encrypted packets with this bit of the trace reason. */
export const TRACE_REASON_ENCRYPT_MASK = 0x80;

export const VerdictNumbers: Record<Verdict, number> = {
  VERDICT_UNKNOWN: 0,
  FORWARDED: 1,
  DROPPED: 2,
  ERROR: 3,
  AUDIT: 4,
  REDIRECTED: 5,
  TRACED: 6,
  TRANSLATED: 7,
};

export const TrafficDirectionNumbers: Record<TrafficDirection, number> = {
  TRAFFIC_DIRECTION_UNKNOWN: 0,
  INGRESS: 1,
  EGRESS: 2,
};

/** policy_verdict_notify.match_type → upstream PolicyMatchType strings. */
export const PolicyMatchTypeNames: Record<number, string> = {
  0: 'none',
  1: 'L3-Only',
  2: 'L3-L4',
  3: 'L4-Only',
  4: 'all',
  5: 'L7-Only',
};

/** flow.DropReason enum: code → name (upstream numbering; defs.h DROP_* use the same codes). */
export const DropReasonNames: Record<number, string> = {
  0: 'DROP_REASON_UNKNOWN',
  130: 'INVALID_SOURCE_MAC',
  131: 'INVALID_DESTINATION_MAC',
  132: 'INVALID_SOURCE_IP',
  133: 'POLICY_DENIED',
  134: 'INVALID_PACKET_DROPPED',
  135: 'CT_TRUNCATED_OR_INVALID_HEADER',
  136: 'CT_MISSING_TCP_ACK_FLAG',
  137: 'CT_UNKNOWN_L4_PROTOCOL',
  138: 'CT_CANNOT_CREATE_ENTRY_FROM_PACKET',
  139: 'UNSUPPORTED_L3_PROTOCOL',
  140: 'MISSED_TAIL_CALL',
  141: 'ERROR_WRITING_TO_PACKET',
  142: 'UNKNOWN_L4_PROTOCOL',
  143: 'UNKNOWN_ICMPV4_CODE',
  144: 'UNKNOWN_ICMPV4_TYPE',
  145: 'UNKNOWN_ICMPV6_CODE',
  146: 'UNKNOWN_ICMPV6_TYPE',
  147: 'ERROR_RETRIEVING_TUNNEL_KEY',
  148: 'ERROR_RETRIEVING_TUNNEL_OPTIONS',
  149: 'INVALID_GENEVE_OPTION',
  150: 'UNKNOWN_L3_TARGET_ADDRESS',
  151: 'STALE_OR_UNROUTABLE_IP',
  152: 'NO_MATCHING_LOCAL_CONTAINER_FOUND',
  153: 'ERROR_WHILE_CORRECTING_L3_CHECKSUM',
  154: 'ERROR_WHILE_CORRECTING_L4_CHECKSUM',
  155: 'CT_MAP_INSERTION_FAILED',
  156: 'INVALID_IPV6_EXTENSION_HEADER',
  157: 'IP_FRAGMENTATION_NOT_SUPPORTED',
  158: 'SERVICE_BACKEND_NOT_FOUND',
  160: 'NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT',
  161: 'FAILED_TO_INSERT_INTO_PROXYMAP',
  162: 'REACHED_EDT_RATE_LIMITING_DROP_HORIZON',
  163: 'UNKNOWN_CONNECTION_TRACKING_STATE',
  164: 'LOCAL_HOST_IS_UNREACHABLE',
  165: 'NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION',
  166: 'UNSUPPORTED_L2_PROTOCOL',
  167: 'NO_MAPPING_FOR_NAT_MASQUERADE',
  168: 'UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE',
  169: 'FIB_LOOKUP_FAILED',
  170: 'ENCAPSULATION_TRAFFIC_IS_PROHIBITED',
  171: 'INVALID_IDENTITY',
  172: 'UNKNOWN_SENDER',
  173: 'NAT_NOT_NEEDED',
  174: 'IS_A_CLUSTERIP',
  175: 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND',
  176: 'FORBIDDEN_ICMPV6_MESSAGE',
  177: 'DENIED_BY_LB_SRC_RANGE_CHECK',
  178: 'SOCKET_LOOKUP_FAILED',
  179: 'SOCKET_ASSIGN_FAILED',
  180: 'PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL',
  181: 'POLICY_DENY',
  182: 'VLAN_FILTERED',
  183: 'INVALID_VNI',
  184: 'INVALID_TC_BUFFER',
  185: 'NO_SID',
  186: 'MISSING_SRV6_STATE',
  187: 'NAT46',
  188: 'NAT64',
  189: 'AUTH_REQUIRED',
  190: 'CT_NO_MAP_FOUND',
  191: 'SNAT_NO_MAP_FOUND',
  192: 'INVALID_CLUSTER_ID',
  193: 'UNSUPPORTED_PROTOCOL_FOR_DSR_ENCAP',
  194: 'NO_EGRESS_GATEWAY',
  195: 'UNENCRYPTED_TRAFFIC',
  196: 'TTL_EXCEEDED',
  197: 'NO_NODE_ID',
  198: 'DROP_RATE_LIMITED',
  199: 'IGMP_HANDLED',
  200: 'IGMP_SUBSCRIBED',
  201: 'MULTICAST_HANDLED',
  202: 'DROP_HOST_NOT_READY',
  203: 'DROP_EP_NOT_READY',
  204: 'DROP_NO_EGRESS_IP',
  205: 'DROP_PUNT_PROXY',
};

/** Human-readable drop reasons as upstream prints them (pkg/monitor/api/drop.go). */
export const DropReasonText: Record<number, string> = {
  0: 'Success',
  2: 'Invalid packet',
  130: 'Invalid source mac',
  131: 'Invalid destination mac',
  132: 'Invalid source ip',
  133: 'Policy denied',
  134: 'Invalid packet',
  135: 'CT: Truncated or invalid header',
  136: 'CT: Missing TCP ACK flag',
  137: 'CT: Unknown L4 protocol',
  138: "CT: Can't create entry from packet",
  139: 'Unsupported L3 protocol',
  140: 'Missed tail call',
  141: 'Error writing to packet',
  142: 'Unknown L4 protocol',
  143: 'Unknown ICMPv4 code',
  144: 'Unknown ICMPv4 type',
  145: 'Unknown ICMPv6 code',
  146: 'Unknown ICMPv6 type',
  147: 'Error retrieving tunnel key',
  148: 'Error retrieving tunnel options',
  149: 'Invalid Geneve option',
  150: 'Unknown L3 target address',
  151: 'Stale or unroutable IP',
  152: 'No matching local container found',
  153: 'Error while correcting L3 checksum',
  154: 'Error while correcting L4 checksum',
  155: 'CT: Map insertion failed',
  156: 'Invalid IPv6 extension header',
  157: 'IP fragmentation not supported',
  158: 'Service backend not found',
  160: 'No tunnel/encapsulation endpoint (datapath BUG!)',
  161: 'Failed to insert into proxymap',
  162: 'Reached EDT rate-limiting drop horizon',
  163: 'Unknown connection tracking state',
  164: 'Local host is unreachable',
  165: 'No configuration available to perform policy decision',
  166: 'Unsupported L2 protocol',
  167: 'No mapping for NAT masquerade',
  168: 'Unsupported protocol for NAT masquerade',
  169: 'FIB lookup failed',
  170: 'Encapsulation traffic is prohibited',
  171: 'Invalid identity',
  172: 'Unknown sender',
  173: 'NAT not needed',
  174: 'Is a ClusterIP',
  175: 'First logical datagram fragment not found',
  176: 'Forbidden ICMPv6 message',
  177: 'Denied by LB src range check',
  178: 'Socket lookup failed',
  179: 'Socket assign failed',
  180: 'Proxy redirection not supported for protocol',
  181: 'Policy denied by denylist',
  182: 'VLAN traffic disallowed by VLAN filter',
  183: 'Incorrect VNI from VTEP',
  184: 'Failed to update or lookup TC buffer',
  185: 'No SID was found for the IP address',
  186: 'SRv6 state was removed during tail call',
  187: 'L3 translation from IPv4 to IPv6 failed (NAT46)',
  188: 'L3 translation from IPv6 to IPv4 failed (NAT64)',
  189: 'Authentication required',
  190: 'No conntrack map found',
  191: 'No nat map found',
  192: 'Invalid ClusterID',
  193: 'Unsupported packet protocol for DSR encapsulation',
  194: 'No egress gateway found',
  195: 'Traffic is unencrypted',
  196: 'TTL exceeded',
  197: 'No node ID found',
  198: 'Rate limited',
  199: 'IGMP handled',
  200: 'IGMP subscribed',
  201: 'Multicast handled',
  202: 'Host datapath not ready',
  203: 'Endpoint policy program not available',
  204: 'No Egress IP configured',
  205: 'Punt to proxy',
};

export function dropReasonName(code: number): string {
  return DropReasonNames[code] ?? 'DROP_REASON_UNKNOWN';
}

export function dropReasonText(code: number): string {
  return DropReasonText[code] ?? String(code);
}

/** Reserved security identities (DESIGN.md §3) → names as upstream prints them. */
export const ReservedIdentityNames: Record<number, string> = {
  0: 'unknown',
  1: 'host',
  2: 'world',
  3: 'unmanaged',
  4: 'health',
  5: 'init',
  6: 'remote-node',
  7: 'kube-apiserver',
  8: 'ingress',
};

/** ICMPv4 type names (as gopacket spells them, which upstream's summaries use). */
export const Icmp4TypeNames: Record<number, string> = {
  0: 'EchoReply',
  3: 'DestinationUnreachable',
  4: 'SourceQuench',
  5: 'Redirect',
  8: 'EchoRequest',
  9: 'RouterAdvertisement',
  10: 'RouterSolicitation',
  11: 'TimeExceeded',
  12: 'ParameterProblem',
  13: 'TimestampRequest',
  14: 'TimestampReply',
  15: 'InfoRequest',
  16: 'InfoReply',
  17: 'AddressMaskRequest',
  18: 'AddressMaskReply',
};

const Icmp4UnreachCodes: Record<number, string> = {
  0: 'Net',
  1: 'Host',
  2: 'Protocol',
  3: 'Port',
  4: 'FragmentationNeeded',
  5: 'SourceRoutingFailed',
  6: 'NetUnknown',
  7: 'HostUnknown',
  8: 'SourceIsolated',
  9: 'NetAdminProhibited',
  10: 'HostAdminProhibited',
  11: 'NetTOS',
  12: 'HostTOS',
  13: 'CommAdminProhibited',
  14: 'HostPrecedence',
  15: 'PrecedenceCutoff',
};

const Icmp4TimeExceededCodes: Record<number, string> = {
  0: 'TTLExceeded',
  1: 'FragmentReassemblyTimeExceeded',
};

/** ICMPv6 type names (gopacket spelling). */
export const Icmp6TypeNames: Record<number, string> = {
  1: 'DestinationUnreachable',
  2: 'PacketTooBig',
  3: 'TimeExceeded',
  4: 'ParameterProblem',
  128: 'EchoRequest',
  129: 'EchoReply',
  130: 'MulticastListenerQuery',
  131: 'MulticastListenerReport',
  132: 'MulticastListenerDone',
  133: 'RouterSolicitation',
  134: 'RouterAdvertisement',
  135: 'NeighborSolicitation',
  136: 'NeighborAdvertisement',
  137: 'Redirect',
  143: 'MulticastListenerReportV2',
};

const Icmp6UnreachCodes: Record<number, string> = {
  0: 'NoRouteToDst',
  1: 'AdminProhibited',
  2: 'BeyondScopeOfSrc',
  3: 'AddressUnreachable',
  4: 'PortUnreachable',
  5: 'SrcAddressFailedPolicy',
  6: 'RejectRouteToDst',
};

const Icmp6TimeExceededCodes: Record<number, string> = {
  0: 'HopLimitExceeded',
  1: 'FragmentReassemblyTimeExceeded',
};

/** `EchoRequest`, `DestinationUnreachable(Port)`, or the number when unknown. */
export function icmpTypeCodeString(v6: boolean, type: number, code: number): string {
  const name = (v6 ? Icmp6TypeNames : Icmp4TypeNames)[type];
  if (name === undefined) return `${type}(${code})`;
  let codes: Record<number, string> | undefined;
  if (v6) codes = type === 1 ? Icmp6UnreachCodes : type === 3 ? Icmp6TimeExceededCodes : undefined;
  else codes = type === 3 ? Icmp4UnreachCodes : type === 11 ? Icmp4TimeExceededCodes : undefined;
  if (codes) return `${name}(${codes[code] ?? `Code: ${code}`})`;
  return name;
}

/** The ICMP type name alone, as the hubble_icmp_total metric labels it. */
export function icmpTypeName(v6: boolean, type: number): string {
  return (v6 ? Icmp6TypeNames : Icmp4TypeNames)[type] ?? String(type);
}

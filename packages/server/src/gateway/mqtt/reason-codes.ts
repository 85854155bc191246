/**
 * MQTT 5 reason codes the gateway sends (OASIS MQTT 5.0, 2.4), and how the gateway's own
 * refusal reasons map onto them. MQTT 3.1.1 has only CONNACK return codes and SUBACK 0x80;
 * everything else there is a disconnect.
 */
export const RC = {
  success: 0x00,
  unspecified: 0x80,
  malformedPacket: 0x81,
  protocolError: 0x82,
  clientIdNotValid: 0x85,
  badAuthenticationMethod: 0x8c,
  notAuthorized: 0x87,
  serverUnavailable: 0x88,
  banned: 0x8a,
  serverShuttingDown: 0x8b,
  keepAliveTimeout: 0x8d,
  sessionTakenOver: 0x8e,
  topicFilterInvalid: 0x8f,
  topicNameInvalid: 0x90,
  packetIdInUse: 0x91,
  noSubscriptionExisted: 0x11,
  receiveMaximumExceeded: 0x93,
  topicAliasInvalid: 0x94,
  packetTooLarge: 0x95,
  messageRateTooHigh: 0x96,
  quotaExceeded: 0x97,
  payloadFormatInvalid: 0x99,
  retainNotSupported: 0x9a,
  qosNotSupported: 0x9b,
} as const;

/** MQTT 3.1.1 CONNACK return codes. */
export const V4_CONNACK = { identifierRejected: 2, serverUnavailable: 3, notAuthorized: 5 } as const;

/** Why a CONNECT was refused, with its code in both versions. */
export type ConnectRefusal = 'no_identity' | 'client_id_mismatch' | 'will_refused' | 'not_admitted' | 'admission_failed' | 'bad_authentication_method' | 'packet_too_large';

export const CONNECT_CODES: Readonly<Record<ConnectRefusal, { v5: number; v4: number }>> = {
  no_identity: { v5: RC.notAuthorized, v4: V4_CONNACK.notAuthorized },
  client_id_mismatch: { v5: RC.clientIdNotValid, v4: V4_CONNACK.identifierRejected },
  will_refused: { v5: RC.notAuthorized, v4: V4_CONNACK.notAuthorized },
  not_admitted: { v5: RC.banned, v4: V4_CONNACK.notAuthorized },
  admission_failed: { v5: RC.serverUnavailable, v4: V4_CONNACK.serverUnavailable },
  bad_authentication_method: { v5: RC.badAuthenticationMethod, v4: V4_CONNACK.notAuthorized },
  packet_too_large: { v5: RC.packetTooLarge, v4: V4_CONNACK.notAuthorized },
};

/**
 * The PUBACK code for a refused publish (MQTT 5); `publishRefusal` reasons and the
 * pipeline's outcomes. Anything not listed is a plain refusal (0x80).
 */
export function pubackCode(reason: string): number {
  if (reason.startsWith('acl_')) return RC.notAuthorized;
  switch (reason) {
    case 'topic_too_long':
    case 'topic_too_deep':
      return RC.topicNameInvalid;
    case 'payload_too_large':
    case 'publish_backlog_exceeded':
      return RC.quotaExceeded;
    case 'dead_lettered':
    case 'refused_by_inbox':
      return RC.payloadFormatInvalid;
    default:
      return RC.unspecified;
  }
}

/** The DISCONNECT code (MQTT 5) for why the gateway ends a session. */
export function disconnectCode(reason: string): number {
  if (reason.startsWith('acl_')) return RC.notAuthorized;
  switch (reason) {
    case 'taken_over':
      return RC.sessionTakenOver;
    case 'certificate_revoked':
    case 'device_suspended':
    case 'device_decommissioned':
    case 'admission_revoked':
    case 'issuer_no_longer_trusted':
      return RC.notAuthorized;
    case 'server_stopping':
    case 'node_draining':
    case 'claim_lost':
      return RC.serverShuttingDown;
    case 'keepalive_timeout':
      return RC.keepAliveTimeout;
    case 'topic_too_long':
    case 'topic_too_deep':
      return RC.topicNameInvalid;
    case 'payload_too_large':
    case 'slow_consumer':
      return RC.quotaExceeded;
    case 'packet_too_large':
      return RC.packetTooLarge;
    case 'publish_backlog_exceeded':
      return RC.messageRateTooHigh;
    case 'receive_maximum_exceeded':
      return RC.receiveMaximumExceeded;
    case 'topic_alias_invalid':
      return RC.topicAliasInvalid;
    case 'retain_not_supported':
      return RC.retainNotSupported;
    case 'qos_not_supported':
      return RC.qosNotSupported;
    case 'malformed_packet':
      return RC.malformedPacket;
    case 'protocol_error':
    case 'packet_id_in_use':
      return RC.protocolError;
    default:
      return RC.unspecified;
  }
}

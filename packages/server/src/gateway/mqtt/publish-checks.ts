import { publishDenial } from './acl.js';
import type { MqttMetrics } from './metrics.js';

export interface PublishLimits {
  readonly maxPayloadBytes: number;
  readonly maxTopicLength: number;
  readonly maxTopicLevels: number;
}

/**
 * Why a device's PUBLISH ends its session, if it does: retain, size and depth limits, then the
 * topic ACL. Counted here; MQTT 3.1.1 has no negative PUBACK, so the caller disconnects.
 */
export function publishRefusal(
  limits: PublishLimits,
  metrics: MqttMetrics,
  deviceId: string,
  topic: string,
  payloadBytes: number,
  retain: boolean,
  /** A topic of this device that passed before: its topic checks (they depend on topic and device only) are not run again. */
  allowedTopic?: string,
): string | undefined {
  if (retain) {
    // Retained messages would live in broker memory for ever; devices have no use for them.
    metrics.aclDenied.inc({ kind: 'publish', reason: 'retain_not_allowed' });
    return 'acl_retain_not_allowed';
  }
  if (payloadBytes > limits.maxPayloadBytes) {
    metrics.limitHits.inc({ limit: 'payload_size' });
    return 'payload_too_large';
  }
  if (topic === allowedTopic) return undefined;
  if (topic.length > limits.maxTopicLength) {
    metrics.limitHits.inc({ limit: 'topic_length' });
    return 'topic_too_long';
  }
  if (topic.split('/').length > limits.maxTopicLevels) {
    metrics.limitHits.inc({ limit: 'topic_depth' });
    return 'topic_too_deep';
  }
  const denial = publishDenial(topic, deviceId);
  if (denial) {
    metrics.aclDenied.inc({ kind: 'publish', reason: denial });
    return `acl_${denial}`;
  }
  return undefined;
}

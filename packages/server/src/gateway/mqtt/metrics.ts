import { Counter, Gauge, type Registry } from 'prom-client';

export function mqttMetrics(registry: Registry) {
  return {
    sessions: new Gauge({ name: 'bulwark_mqtt_sessions', help: 'Devices connected over MQTT now', registers: [registry] }),
    tlsRefused: new Counter({ name: 'bulwark_mqtt_tls_refused_total', help: 'TLS handshakes refused, by reason', labelNames: ['reason'] as const, registers: [registry] }),
    connectRefused: new Counter({ name: 'bulwark_mqtt_connect_refused_total', help: 'MQTT CONNECTs refused after TLS, by reason', labelNames: ['reason'] as const, registers: [registry] }),
    aclDenied: new Counter({ name: 'bulwark_mqtt_acl_denied_total', help: 'Publishes, subscriptions and wills refused by the topic ACL', labelNames: ['kind', 'reason'] as const, registers: [registry] }),
    limitHits: new Counter({ name: 'bulwark_mqtt_limit_hits_total', help: 'Publishes that ended a session by breaking a size limit or the hard abuse bound (publish_backlog)', labelNames: ['limit'] as const, registers: [registry] }),
    held: new Counter({ name: 'bulwark_mqtt_publishes_held_total', help: 'Publishes held (PUBACK and socket reads delayed) because the device was over its publish rate', registers: [registry] }),
    deferred: new Counter({ name: 'bulwark_mqtt_publishes_deferred_total', help: 'Publishes handed to the next event-loop turn because this turn had done mqtt.publishesPerTurn already', registers: [registry] }),
    disconnects: new Counter({ name: 'bulwark_mqtt_disconnects_total', help: 'Sessions ended, by reason', labelNames: ['reason'] as const, registers: [registry] }),
    connects: new Counter({ name: 'bulwark_mqtt_connects_total', help: 'Sessions admitted, by MQTT protocol version (4 is 3.1.1, 5 is MQTT 5)', labelNames: ['version'] as const, registers: [registry] }),
    messagesIn: new Counter({ name: 'bulwark_mqtt_messages_in_total', help: 'Publishes accepted from devices', registers: [registry] }),
  };
}

export type MqttMetrics = ReturnType<typeof mqttMetrics>;

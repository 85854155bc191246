import type { Clock, Logger } from '@bulwark/core';
import { DEVICE_TOPIC_ROOT, type ErrorNotice, deviceTopic, matchDeviceTopic } from '@bulwark/protocol';
import type { IdentityService, PeerCertificate } from '../../identity/index.js';
import type { IngestRequest, IngestService } from '../../ingest/index.js';
import { type MessageTrace, type Tracer, epochOf, preciseNow } from '../../tracing/index.js';
import type { DeviceInbox } from '../device-inbox.js';
import type { InboundPublish, PublishOutcome } from './connection.js';
import { RC } from './reason-codes.js';
import { handleRotation } from './rotation.js';
import { answerTimeRequest } from './time-sync.js';

/** Sends a message to the device that published (its errors topic, a reply). */
export type Reply = (topic: string, payload: Buffer, qos: 0 | 1) => void;

const ACCEPTED: PublishOutcome = { code: RC.success };

/** A traced message's outcome: its trace ends once the acknowledgement is written. */
function traced(outcome: PublishOutcome, trace: MessageTrace, status: string): PublishOutcome {
  return {
    ...outcome,
    acked: () => {
      trace.hop('gateway.ack');
      trace.end({ 'bulwark.outcome': status });
    },
  };
}

/** Tells the device on its errors topic why a message was refused. */
function notify(reply: Reply, deviceId: string, notice: ErrorNotice): void {
  reply(deviceTopic(deviceId, 'errors'), Buffer.from(JSON.stringify(notice)), 1);
}

/**
 * What a device's publish (one that passed the ACL, the limits and its rate) does: telemetry
 * into the pipeline, twin reports, command results, health, events, logs and update status into
 * the inbox, time requests and certificate rotation answered. Resolves once the message is
 * durable, with the outcome its acknowledgement carries; a message the platform refuses is
 * also answered on the device's errors topic, where MQTT 3.1.1 devices read the reason.
 */
export class PublishHandler {
  constructor(private readonly deps: { identity: IdentityService; clock: Clock; log: Logger; ingest?: IngestService; inbox?: DeviceInbox; tracer?: Tracer }) {}

  async handle(peer: PeerCertificate, p: InboundPublish, reply: Reply): Promise<PublishOutcome> {
    const { deviceId } = peer;
    // The ACL let only the device's own device-to-cloud topics through: `devices/{id}/` and a catalogue topic.
    // `devices/` + id + `/`: computed, not built from deviceTopics(), which makes every topic of the device (measured: 8% of the CPU per message).
    const suffix = p.topic.slice(DEVICE_TOPIC_ROOT.length + deviceId.length + 2);
    const topic = matchDeviceTopic(suffix)?.name;
    if (topic === 'certsRotate') void handleRotation((t, b) => reply(t, b, 1), this.deps.identity, peer, p.payload, this.deps.log);
    if (topic === 'time') answerTimeRequest((t, b) => reply(t, b, 0), this.deps.clock, deviceId, p.payload, this.deps.clock.now());
    if (this.deps.ingest && (topic === 'telemetry' || topic === 'telemetryStream')) {
      // Traced when the device asked (a sampled traceparent) or it is the one in tracing.sampleEvery.
      const trace = this.deps.tracer?.begin(deviceId, p.arrivedHr === undefined ? preciseNow() : epochOf(p.arrivedHr), p.traceparent);
      const request: IngestRequest = { deviceId, transport: 'mqtt', topic: p.topic, payload: p.payload, receivedAt: this.deps.clock.now(), sheddable: p.qos === 0, trace };
      const result = await this.deps.ingest.accept(request);
      if (result.status === 'shed') {
        // Answered on the next turn of the event loop: at once, the connection would parse the
        // client's next chunk in the same turn, and a flood from many clients would keep HTTP waiting.
        await new Promise((resolve) => setImmediate(resolve));
        return trace ? traced(ACCEPTED, trace, result.status) : ACCEPTED;
      }
      if (result.status !== 'dead_lettered') return trace ? traced(ACCEPTED, trace, result.status) : ACCEPTED;
      notify(reply, deviceId, { deadLetterId: result.id, reason: result.reason, problems: [...result.problems], topic: p.topic });
      const first = result.problems[0];
      const refused: PublishOutcome = { code: RC.payloadFormatInvalid, reason: 'dead_lettered', detail: first ? `${result.reason}; ${first.path || '/'} expected ${first.expected}` : result.reason };
      return trace ? traced(refused, trace, result.status) : refused;
    }
    const correlation = p.correlationData?.toString('utf8');
    const inboxed = this.deps.inbox?.receive(deviceId, suffix, p.payload, correlation === undefined ? undefined : { correlationId: correlation });
    if (!inboxed) return ACCEPTED;
    const refusal = await inboxed;
    if (!refusal) return ACCEPTED;
    notify(reply, deviceId, { reason: refusal.reason, problems: [...refusal.problems], topic: p.topic });
    return { code: RC.payloadFormatInvalid, reason: 'refused_by_inbox', detail: [refusal.reason, ...refusal.problems].slice(0, 2).join('; ') };
  }
}

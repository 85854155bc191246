import type { Static } from 'typebox';
import { CommandRequest, CommandResult, DeviceEvent, HealthReport, LogBatch, TwinDesired, TwinReported } from './device-messages.js';
import { TelemetryEnvelope } from './envelope.js';
import { OtaCancel, OtaJob, OtaJobMessage, OtaStatus } from './ota-messages.js';
import { ErrorNotice, PlatformErrorReply, RotationIssued, RotationRequest, RotationResult, TimeAnswer, TimeRefusal, TimeReply, TimeRequest } from './service-messages.js';

/**
 * Every message of the device contract by name: the payloads of DEVICE_TOPICS, and the
 * alternatives of those that are one of several shapes. The reference page lists them in
 * this order.
 */
export const DEVICE_MESSAGES = {
  TelemetryEnvelope,
  DeviceEvent,
  HealthReport,
  TwinReported,
  TwinDesired,
  CommandRequest,
  CommandResult,
  OtaJobMessage,
  OtaJob,
  OtaCancel,
  OtaStatus,
  LogBatch,
  TimeRequest,
  TimeReply,
  TimeAnswer,
  TimeRefusal,
  RotationRequest,
  RotationResult,
  RotationIssued,
  PlatformErrorReply,
  ErrorNotice,
} as const;

export type DeviceMessageName = keyof typeof DEVICE_MESSAGES;
export type DeviceMessage<N extends DeviceMessageName> = Static<(typeof DEVICE_MESSAGES)[N]>;

const PEM = (label: string) => `-----BEGIN ${label}-----\nMIIB…\n-----END ${label}-----\n`;

/** One valid example of each message: shown in the reference, and checked against its schema by the tests. */
export const MESSAGE_EXAMPLES: { readonly [N in DeviceMessageName]: DeviceMessage<N> } = {
  TelemetryEnvelope: { id: 'b7.1042', seq: 1042, ts: 1764131400123, mono: 8812001, boot: 'b7', schema: 'env-sensor@2', data: { temp_c: 21.5, rh_pct: 40 } },
  DeviceEvent: { id: 'b7.e1', type: 'boot', ts: 1764131400123, data: { restartReason: 'power_on' } },
  HealthReport: {
    ts: 1764131400123,
    boot: 'b7',
    uptimeS: 3600,
    memUsedBytes: 41943040,
    batteryPct: 87,
    restartReason: 'power_on',
    restartLoop: false,
    firmware: { version: '1.4.2', securityVersion: 3 },
    posture: {
      listening: [
        { proto: 'tcp', port: 22, address: '0.0.0.0' },
        { proto: 'tcp', port: 5555, address: '0.0.0.0' },
        { proto: 'udp', port: 5353, address: '0.0.0.0' },
      ],
      listeningTotal: 3,
      debugPorts: [{ proto: 'tcp', port: 5555, address: '0.0.0.0', service: 'adb' }],
      ssh: { enabled: true, passwordAuth: false, rootLogin: 'no' },
      serialConsole: { enabled: true, consoles: ['ttyS0'] },
      boot: { slot: 'a', verified: true },
    },
  },
  TwinReported: { version: 7, status: 'applied', config: { sampleRateS: 30 }, ts: 1764131400123 },
  TwinDesired: { version: 7, config: { sampleRateS: 30 }, ts: 1764131400000 },
  CommandRequest: { id: 'cmd_01JD4', params: { delayS: 5 }, issuedAt: 1764131400000, expiresAt: 1764131700000 },
  CommandResult: { id: 'cmd_01JD4', status: 'succeeded', output: { rebootingInS: 5 }, ts: 1764131400456 },
  OtaJobMessage: { jobId: 'job_9', cancel: true, reason: 'rollout aborted: error budget spent' },
  OtaJob: {
    jobId: 'job_9',
    rolloutId: 'ro_3',
    artifactId: 'fw_12',
    url: '/v1/firmware/fw_12',
    issuedAt: 1764131400000,
    attempt: 1,
    manifest: {
      format: 'bulwark-firmware/1',
      delegation: { signed: { type: 'release-keys', version: 2, expires: 1795667400000, keys: [{ keyId: '9c1e…', publicKey: 'q8Z…' }] }, signatures: [{ keyId: '51ab…', sig: 'Mz4…' }] },
      release: {
        signed: { type: 'release', name: 'valve', version: '1.5.0', securityVersion: 3, hardware: { model: 'valve', hardwareRevisions: ['B'] }, size: 2097152, sha256: 'e3b0…', issuedAt: 1764131300000, expires: 1795667400000 },
        signatures: [{ keyId: '9c1e…', sig: 'Qk1…' }],
      },
    },
  },
  OtaCancel: { jobId: 'job_9', cancel: true, reason: 'rollout aborted: error budget spent' },
  OtaStatus: { jobId: 'job_9', state: 'committed', ts: 1764131400999, firmware: { version: '1.5.0', securityVersion: 3 } },
  LogBatch: { entries: [{ ts: 1764131400123, level: 'warn', msg: 'sensor read retried', data: { attempt: 2 } }], dropped: 0 },
  TimeRequest: { t0: 1764131400000 },
  TimeReply: { t0: 1764131400000, t1: 1764131400021, t2: 1764131400022 },
  TimeAnswer: { t0: 1764131400000, t1: 1764131400021, t2: 1764131400022 },
  TimeRefusal: { error: { code: 'BULWARK_ERR_VALIDATION', message: 'send {"t0": <device time in ms>}' }, t1: 1764131400021, t2: 1764131400022 },
  RotationRequest: { csr: PEM('CERTIFICATE REQUEST') },
  RotationResult: { serial: '4f1c', certificate: PEM('CERTIFICATE'), caChain: PEM('CERTIFICATE'), notAfter: 1795667400000 },
  RotationIssued: { serial: '4f1c', certificate: PEM('CERTIFICATE'), caChain: PEM('CERTIFICATE'), notAfter: 1795667400000 },
  PlatformErrorReply: { error: { code: 'BULWARK_ERR_CSR_INVALID', message: 'send {"csr": "<PEM certificate request>"}' } },
  ErrorNotice: { reason: 'invalid', problems: ['/status must be equal to one of the allowed values'], topic: 'devices/valve-1/twin/reported' },
};

import type { Logger } from '@bulwark/core';
import { PlatformError } from '@bulwark/core';
import { RotationRequest, type RotationResult, deviceTopics, parseMessage } from '@bulwark/protocol';
import type { IdentityService, PeerCertificate } from '../../identity/index.js';

/** The CSR of a RotationRequest body `{"csr": "<PEM>"}`, the same over MQTT and HTTPS. */
export function csrOf(payload: Buffer): string {
  const request = parseMessage(RotationRequest, payload);
  if (!request) throw new PlatformError('BULWARK_ERR_CSR_INVALID', 'send {"csr": "<PEM certificate request>"}');
  return request.csr;
}

/**
 * Certificate rotation over MQTT: the device publishes a RotationRequest on
 * `devices/{id}/certs/rotate` using its current certificate, and receives the RotationResult,
 * the new certificate or an error with a code, on `devices/{id}/certs/rotate/result`.
 */
export async function handleRotation(reply: (topic: string, payload: Buffer) => void, identity: IdentityService, peer: PeerCertificate, payload: Buffer, log: Logger): Promise<void> {
  let answer: RotationResult;
  try {
    const issued = await identity.rotate(peer, csrOf(payload));
    answer = { serial: issued.serial, certificate: issued.certificatePem, caChain: issued.caChainPem, notAfter: issued.notAfter };
    log.info({ deviceId: peer.deviceId, serial: issued.serial }, 'certificate rotated over MQTT');
  } catch (err) {
    const e = err instanceof PlatformError ? err : new PlatformError('BULWARK_ERR_INTERNAL', 'rotation failed');
    if (!(err instanceof PlatformError)) log.error({ err, deviceId: peer.deviceId }, 'certificate rotation failed');
    answer = { error: { code: e.code, message: e.message } };
  }
  reply(deviceTopics(peer.deviceId).certsRotateResult, Buffer.from(JSON.stringify(answer)));
}

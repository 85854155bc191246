import type { Logger } from '@bulwark/core';
import { PlatformError } from '@bulwark/core';
import type { IdentityService, PeerCertificate } from '../../identity/index.js';

/** The CSR of a rotation request body `{"csr": "<PEM>"}`, the same over MQTT and HTTPS. */
export function csrOf(payload: Buffer): string {
  let csr: unknown;
  try {
    csr = (JSON.parse(payload.toString('utf8')) as { csr?: unknown }).csr;
  } catch {
    csr = undefined;
  }
  if (typeof csr !== 'string') throw new PlatformError('BULWARK_ERR_CSR_INVALID', 'send {"csr": "<PEM certificate request>"}');
  return csr;
}

/**
 * Certificate rotation over MQTT: the device publishes `{"csr": "<PEM>"}` on
 * `devices/{id}/certs/rotate` using its current certificate, and receives the new
 * certificate (or an error with a code) on `devices/{id}/certs/rotate/result`.
 */
export async function handleRotation(reply: (topic: string, payload: Buffer) => void, identity: IdentityService, peer: PeerCertificate, payload: Buffer, log: Logger): Promise<void> {
  let answer: unknown;
  try {
    const issued = await identity.rotate(peer, csrOf(payload));
    answer = { serial: issued.serial, certificate: issued.certificatePem, caChain: issued.caChainPem, notAfter: issued.notAfter };
    log.info({ deviceId: peer.deviceId, serial: issued.serial }, 'certificate rotated over MQTT');
  } catch (err) {
    const e = err instanceof PlatformError ? err : new PlatformError('BULWARK_ERR_INTERNAL', 'rotation failed');
    if (!(err instanceof PlatformError)) log.error({ err, deviceId: peer.deviceId }, 'certificate rotation failed');
    answer = { error: { code: e.code, message: e.message } };
  }
  reply(`devices/${peer.deviceId}/certs/rotate/result`, Buffer.from(JSON.stringify(answer)));
}

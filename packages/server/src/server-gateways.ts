import { parseAddressRanges, type ServerConfig } from './config/index.js';
import { CoapGateway } from './gateway/coap/coap-gateway.js';
import { DeviceHttpsGateway } from './gateway/https/device-https.js';
import { MqttGateway } from './gateway/mqtt/gateway.js';
import { TokenBuckets } from './gateway/mqtt/token-bucket.js';

type MqttDeps = ConstructorParameters<typeof MqttGateway>[1];
type HttpsDeps = ConstructorParameters<typeof DeviceHttpsGateway>[1];

/**
 * The device gateways the configuration enables (MQTT, device HTTPS, CoAP), sharing one
 * publish rate per device whatever the transport, the server names devices may use, and the
 * load balancers whose PROXY protocol headers are believed.
 */
export function deviceGateways(config: ServerConfig, deps: Omit<MqttDeps, 'deviceRate' | 'ingest'> & Pick<HttpsDeps, 'firmware' | 'ingest'>): { mqtt?: MqttGateway; coap?: CoapGateway; deviceHttps?: DeviceHttpsGateway } {
  const deviceRate = new TokenBuckets(deps.clock, config.mqtt.publishRatePerSecond, config.mqtt.publishBurst);
  const hostnames = config.mqtt.hostnames
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  const proxyProtocolFrom = parseAddressRanges(config.gateway.proxyProtocolFrom).ranges;
  const { identity, ingest, clock, log, metrics, tracer, firmware } = deps;
  const common = { identity, ingest, clock, log, metrics, deviceRate, ...(tracer ? { tracer } : {}) };
  return {
    ...(config.mqtt.enabled ? { mqtt: new MqttGateway({ ...config.mqtt, hostnames, proxyProtocolFrom }, { ...deps, deviceRate }) } : {}),
    ...(config.coap.enabled ? { coap: new CoapGateway(config.coap, common) } : {}),
    ...(config.deviceHttp.enabled ? { deviceHttps: new DeviceHttpsGateway({ ...config.deviceHttp, hostnames, proxyProtocolFrom }, { ...common, ...(firmware ? { firmware } : {}) }) } : {}),
  };
}

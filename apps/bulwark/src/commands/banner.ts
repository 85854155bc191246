import { box } from '../output.js';

/** What `bulwark start` tells the operator once the server listens. */
export interface BannerInfo {
  readonly version: string;
  readonly url: string;
  readonly host: string;
  /** The MQTT gateway's address once listening, undefined when it is disabled. */
  readonly mqtt: { readonly host: string; readonly port: number } | undefined;
  /** The device HTTPS listener's address once listening, undefined when it is disabled. */
  readonly deviceHttp: { readonly host: string; readonly port: number } | undefined;
  /** CoAP ingest's address when enabled (off by default). */
  readonly coap?: { readonly host: string; readonly port: number } | undefined;
  readonly dataDir: string;
  readonly storeEngine: string;
  readonly storeLocation: string;
  readonly bus: string;
  readonly logLevel: string;
  /** This (first) start created the admin user. */
  readonly adminCreated: boolean;
  /** The file the server wrote the generated admin key to (never the key itself: standard output ends up in logs). */
  readonly adminKeyFile: string | undefined;
  /** The admin key came from BULWARK_BOOTSTRAP_ADMIN_KEY: the operator has it. */
  readonly adminKeyPreset: boolean;
  /** The master key file created on this start. */
  readonly masterKeyPath: string | undefined;
  /** The HTTP API speaks TLS (http.tls): the root CA file clients trust, when the certificate is the platform's. */
  readonly apiTls?: { readonly caFile: string | undefined };
}

export const STOP_HINT = 'Stop with Ctrl+C (SIGINT) or SIGTERM.';

const LOOPBACK = /^(127\.|::1$|localhost$)/;
const ANY = /^(0\.0\.0\.0|::)$/;

export const mqttUrl = (host: string, port: number) => `mqtts://${host.includes(':') ? `[${host}]` : host}:${port}`;

export function formatBanner(b: BannerInfo): string {
  const out = [
    '',
    `Bulwark ${b.version} is listening on ${b.url}`,
    `dashboard on ${b.url}/ (sign in with an API key)`,
    b.mqtt === undefined ? 'MQTT gateway disabled (mqtt.enabled is false)' : `MQTT (mutual TLS) on ${mqttUrl(b.mqtt.host, b.mqtt.port)}${ANY.test(b.mqtt.host) ? ' (all interfaces)' : ''}`,
    b.deviceHttp === undefined
      ? 'device HTTPS disabled (deviceHttp.enabled is false)'
      : `device HTTPS (mutual TLS) on https://${b.deviceHttp.host.includes(':') ? `[${b.deviceHttp.host}]` : b.deviceHttp.host}:${b.deviceHttp.port}${ANY.test(b.deviceHttp.host) ? ' (all interfaces)' : ''}`,
    ...(b.coap ? [`CoAP (signed requests, no DTLS: readable on the wire) on coap://${b.coap.host}:${b.coap.port}`] : []),
    `  data directory  ${b.dataDir}`,
    `  store           ${b.storeEngine} ${b.storeLocation}`,
    `  bus             ${b.bus}`,
    `  logs            JSON on standard output, level ${b.logLevel}`,
  ];
  if (b.apiTls?.caFile !== undefined) {
    out.push(
      '',
      `The HTTP API speaks TLS with a certificate from the platform's CA; clients trust ${b.apiTls.caFile}:`,
      `  curl --cacert ${shellQuote(b.apiTls.caFile)} ${b.url}/healthz`,
      `  export NODE_EXTRA_CA_CERTS=${shellQuote(b.apiTls.caFile)}   # before the npx bulwark commands below`,
    );
  } else if (b.apiTls) {
    out.push('', 'The HTTP API speaks TLS with the certificate of http.tlsCertFile.');
  }
  if (!LOOPBACK.test(b.host) && !b.apiTls) {
    out.push('', `warning: the HTTP API listens on ${b.host} without TLS: keys and tokens cross the network in clear text.`, '         Put a TLS-terminating proxy in front of it, or keep --http-host on 127.0.0.1.');
  }
  if (b.adminCreated && b.adminKeyFile !== undefined) {
    out.push(
      '',
      box('FIRST START: ADMIN API KEY WRITTEN TO A FILE', [
        `The admin API key is in ${b.adminKeyFile}`,
        '(mode 0600, readable by you only). It is not printed, so it stays out of logs;',
        'the server keeps only its hash and never writes this file again.',
        'Move the key to a password manager or secret store and delete the file, or',
        'delete the file once another admin key exists ("bulwark keys create").',
      ]),
    );
  } else if (b.adminCreated) {
    out.push('', 'First start: created the admin user with the key from BULWARK_BOOTSTRAP_ADMIN_KEY (not printed).');
  }
  if (b.adminCreated) {
    const key = b.adminKeyFile !== undefined ? `"$(cat ${shellQuote(b.adminKeyFile)})"` : '"$BULWARK_BOOTSTRAP_ADMIN_KEY"';
    out.push(
      '',
      'Try next:',
      `  npx bulwark login --url ${b.url} --key ${key}`,
      '  npx bulwark whoami',
      '  npx bulwark users create alice --role viewer',
      '  npx bulwark devices create sensor-1',
      '  npx bulwark devices enroll sensor-1 --out ./sensor-1',
      '  npx bulwark audit-log verify',
      `  open ${b.url}/ in a browser and sign in with the admin key`,
    );
  } else {
    out.push('', `Log in with: npx bulwark login --url ${b.url} --key <your API key>`);
  }
  if (b.masterKeyPath !== undefined) {
    out.push(
      '',
      `Created the master key: ${b.masterKeyPath} (mode 0600).`,
      '  It encrypts the secrets in the store. Back it up every time you back up the database:',
      '  a database backup cannot be decrypted without it. Keep the copy as safe as the key itself.',
    );
  }
  out.push('', STOP_HINT);
  return out.join('\n');
}

/** A path as one shell word: as is when it needs no quoting, else in single quotes. */
export function shellQuote(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", "'\\''")}'`;
}

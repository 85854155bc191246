import { type Packet, type Parser, parser as mqttParser } from 'mqtt-packet';

/** MQTT 5 properties a client may send, by packet (OASIS MQTT 5.0, 2.2.2.2); `will` for the will properties of CONNECT. */
const ALLOWED: Readonly<Record<string, ReadonlySet<string>>> = {
  connect: new Set(['sessionExpiryInterval', 'receiveMaximum', 'maximumPacketSize', 'topicAliasMaximum', 'requestResponseInformation', 'requestProblemInformation', 'userProperties', 'authenticationMethod', 'authenticationData']),
  will: new Set(['willDelayInterval', 'payloadFormatIndicator', 'messageExpiryInterval', 'contentType', 'responseTopic', 'correlationData', 'userProperties']),
  publish: new Set(['payloadFormatIndicator', 'messageExpiryInterval', 'topicAlias', 'responseTopic', 'correlationData', 'userProperties', 'contentType']),
  puback: new Set(['reasonString', 'userProperties']),
  pubrec: new Set(['reasonString', 'userProperties']),
  pubrel: new Set(['reasonString', 'userProperties']),
  pubcomp: new Set(['reasonString', 'userProperties']),
  subscribe: new Set(['subscriptionIdentifier', 'userProperties']),
  unsubscribe: new Set(['userProperties']),
  disconnect: new Set(['sessionExpiryInterval', 'reasonString', 'userProperties', 'serverReference']),
  auth: new Set(['authenticationMethod', 'authenticationData', 'reasonString', 'userProperties']),
};

/**
 * What the codec lets through and the protocol does not: a property with no place in its
 * packet (malformed), a property given twice (mqtt-packet makes an array of it), a CONNECT
 * limit of 0, an empty SUBSCRIBE or UNSUBSCRIBE (protocol errors).
 */
export function packetProblem(p: Packet): 'malformed_packet' | 'protocol_error' | undefined {
  if ((p.cmd === 'subscribe' && p.subscriptions.length === 0) || (p.cmd === 'unsubscribe' && p.unsubscriptions.length === 0)) return 'protocol_error';
  const lists: [string, object | undefined][] = [[p.cmd, 'properties' in p ? p.properties : undefined]];
  if (p.cmd === 'connect' && p.will) lists.push(['will', p.will.properties]);
  for (const [kind, props] of lists) {
    for (const [name, value] of Object.entries(props ?? {})) {
      if (!ALLOWED[kind]?.has(name)) return 'malformed_packet';
      if (Array.isArray(value) && name !== 'userProperties') return 'protocol_error';
    }
  }
  if (p.cmd === 'connect' && (p.properties?.receiveMaximum === 0 || p.properties?.maximumPacketSize === 0)) return 'protocol_error';
  return undefined;
}

/** mqtt-packet 9.0.2 parser internals the strict parser replaces (checked in its parser.js; the version is pinned). */
interface ParserInternals {
  _list: { length: number; slice(start: number, end: number): Buffer };
  _pos: number;
  packet: { length: number };
  _parseNum(): number;
  _parseByte(): number | undefined;
  _parseString(): string | null;
  _parseByType(type: string): unknown;
  _emitError(err: Error): void;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * mqtt-packet's parser made strict where the codec is lenient: strings must be well-formed
 * UTF-8 without U+0000 [MQTT-1.5.4-1/2] (it decodes bad bytes to U+FFFD), and one-byte flag
 * properties must be 0 or 1 (it reads any byte as a boolean).
 */
export function strictParser(): Parser {
  const parser = mqttParser({ protocolVersion: 4 });
  const p = parser as unknown as ParserInternals;
  p._parseString = function (this: ParserInternals) {
    const length = this._parseNum();
    const end = length + this._pos;
    if (length === -1 || end > this._list.length || end > this.packet.length) return null;
    let text: string;
    try {
      text = utf8.decode(this._list.slice(this._pos, end));
    } catch {
      this._emitError(new Error('ill-formed UTF-8'));
      return null;
    }
    if (text.includes('\u0000')) {
      this._emitError(new Error('U+0000 in a string'));
      return null;
    }
    this._pos = end;
    return text;
  };
  const byType = p._parseByType.bind(p);
  p._parseByType = function (this: ParserInternals, type: string) {
    if (type !== 'byte') return byType(type);
    const b = this._parseByte();
    if (b !== 0 && b !== 1) this._emitError(new Error('a flag property other than 0 or 1'));
    return b === 1;
  };
  return parser;
}

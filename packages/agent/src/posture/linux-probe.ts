import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { dirname, join } from 'node:path';
import { type DebugPort, type DevicePosture, KNOWN_DEBUG_PORTS, type ListeningSocket, POSTURE_LIMITS } from '@bulwark/protocol';
import type { PostureProbe } from './probe.js';
import { isLoopback, parseProcNet } from './proc-net.js';
import { parseSshdConfig } from './sshd-config.js';

export interface LinuxPostureOptions {
  /** Where to read (tests point these at fixture files). */
  readonly paths?: {
    /** Directory holding tcp, tcp6, udp, udp6 (default /proc/net). */
    readonly procNet?: string;
    /** Default /etc/ssh/sshd_config; its Include lines are read relative to its directory. */
    readonly sshdConfig?: string;
    /** Default /proc/cmdline. */
    readonly cmdline?: string;
  };
  /** Ports of debug and remote-shell interfaces, with their names (default KNOWN_DEBUG_PORTS). */
  readonly debugPorts?: Readonly<Record<number, string>>;
  /** SSH is part of this device's design (default true). When false, a listening SSH port is a debug port. */
  readonly sshAllowed?: boolean;
  /** Byte order of /proc/net addresses (default: this machine's). */
  readonly littleEndian?: boolean;
}

const read = (path: string) => readFile(path, 'utf8').catch(() => undefined);

/** Console names on the kernel command line that are serial lines (anything but virtual terminals `ttyN` and `null`). */
export function serialConsoles(cmdline: string): string[] {
  const names = cmdline
    .split(/\s+/)
    .filter((w) => w.startsWith('console='))
    .map((w) => w.slice('console='.length).split(',')[0] ?? '');
  return [...new Set(names.filter((n) => n !== '' && n !== 'null' && !/^tty[0-9]*$/.test(n)))].map((n) => n.slice(0, 32));
}

/** The default probe on Linux: /proc/net for sockets, sshd_config, /proc/cmdline. */
export class LinuxPostureProbe implements PostureProbe {
  readonly #o: LinuxPostureOptions;

  constructor(o: LinuxPostureOptions = {}) {
    this.#o = o;
  }

  async probe(): Promise<Omit<DevicePosture, 'boot'>> {
    const p = this.#o.paths ?? {};
    const sshdPath = p.sshdConfig ?? '/etc/ssh/sshd_config';
    const [sockets, sshdText, cmdline] = await Promise.all([this.#sockets(p.procNet ?? '/proc/net'), read(sshdPath), read(p.cmdline ?? '/proc/cmdline')]);
    const sshd = sshdText === undefined ? undefined : await parseSshdConfig(sshdText, dirname(sshdPath));
    const sshPorts = new Set(sshd?.ports ?? [22]);
    const debug: DebugPort[] = [];
    if (sockets) {
      const table = this.#o.debugPorts ?? KNOWN_DEBUG_PORTS;
      for (const s of sockets) {
        const service = table[s.port] ?? (this.#o.sshAllowed === false && s.proto === 'tcp' && sshPorts.has(s.port) ? 'ssh' : undefined);
        if (service !== undefined) debug.push({ ...s, service: service.slice(0, POSTURE_LIMITS.serviceMaxLength) });
      }
    }
    const sshEnabled = sockets?.some((s) => s.proto === 'tcp' && sshPorts.has(s.port));
    const ssh = { ...(sshEnabled !== undefined ? { enabled: sshEnabled } : {}), ...(sshd ? { passwordAuth: sshd.passwordAuth, rootLogin: sshd.rootLogin } : {}) };
    const consoles = cmdline === undefined ? undefined : serialConsoles(cmdline).slice(0, POSTURE_LIMITS.consolesMaxItems);
    const exposed = (s: ListeningSocket) => (debug.some((d) => d.proto === s.proto && d.port === s.port) ? 0 : isLoopback(s.address) ? 2 : 1);
    const listed = sockets?.slice().sort((a, b) => exposed(a) - exposed(b) || a.port - b.port);
    return {
      ...(listed ? { listening: listed.slice(0, POSTURE_LIMITS.listeningMaxItems), listeningTotal: listed.length, debugPorts: debug.slice(0, POSTURE_LIMITS.debugPortsMaxItems) } : {}),
      ...(Object.keys(ssh).length > 0 ? { ssh } : {}),
      ...(consoles ? { serialConsole: { enabled: consoles.length > 0, ...(consoles.length > 0 ? { consoles } : {}) } } : {}),
    };
  }

  /** Every listening socket once; undefined when no /proc/net file could be read. */
  async #sockets(dir: string): Promise<ListeningSocket[] | undefined> {
    const le = this.#o.littleEndian ?? endianness() === 'LE';
    const files = await Promise.all((['tcp', 'tcp6', 'udp', 'udp6'] as const).map(async (f) => ({ proto: f.startsWith('tcp') ? ('tcp' as const) : ('udp' as const), text: await read(join(dir, f)) })));
    if (files.every((f) => f.text === undefined)) return undefined;
    const seen = new Map<string, ListeningSocket>();
    for (const f of files) for (const s of f.text === undefined ? [] : parseProcNet(f.text, f.proto, le)) seen.set(`${s.proto} ${s.address} ${s.port}`, s);
    return [...seen.values()];
  }
}

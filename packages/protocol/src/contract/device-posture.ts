import Type, { type Static } from 'typebox';

/**
 * Device posture: what the device gets right or wrong about its own exposure, in its health
 * report. Every part is optional: a source the device cannot read is left out, never guessed.
 */

export const POSTURE_LIMITS = {
  /** Listening sockets listed; `listeningTotal` says how many there were in all. */
  listeningMaxItems: 24,
  debugPortsMaxItems: 16,
  consolesMaxItems: 8,
  addressMaxLength: 45,
  serviceMaxLength: 32,
} as const;

/**
 * Ports of well-known debug and remote-shell interfaces. A device listening on one of them has
 * left a debug interface on. SSH (22) is not in it: a device whose policy says SSH is off adds it.
 */
export const KNOWN_DEBUG_PORTS: Readonly<Record<number, string>> = {
  23: 'telnet',
  1234: 'gdbserver',
  2323: 'telnet',
  2345: 'gdbserver',
  3333: 'openocd-gdb',
  4444: 'openocd-telnet',
  5037: 'adb-server',
  5555: 'adb',
  6666: 'openocd-tcl',
  9229: 'node-inspector',
};

const L = POSTURE_LIMITS;
/** No control characters (line breaks included): these strings end up in logs, tables and rendered reports. */
export const POSTURE_TEXT_PATTERN = '^[^\\u0000-\\u001F\\u007F]*$';
const closed = (description: string) => ({ additionalProperties: false, description }) as const;

export const SocketProto = Type.Enum(['tcp', 'udp'], { description: '`tcp`: a socket in LISTEN state; `udp`: a bound, unconnected socket.' });

const socket = {
  proto: SocketProto,
  port: Type.Integer({ minimum: 0, maximum: 65535, description: 'Local port.' }),
  address: Type.String({ minLength: 1, maxLength: L.addressMaxLength, description: 'Local address it is bound to: `0.0.0.0` or `::` for every interface, `127.0.0.1` / `::1` for loopback only.' }),
};

export const ListeningSocket = Type.Object(socket, closed('A socket waiting for connections (TCP) or datagrams (UDP).'));
export type ListeningSocket = Static<typeof ListeningSocket>;

export const DebugPort = Type.Object(
  {
    ...socket,
    service: Type.String({ minLength: 1, maxLength: L.serviceMaxLength, description: 'The interface this port is known for, e.g. `telnet`, `adb`, `gdbserver`, `ssh`.' }),
  },
  closed("A listening socket on the port of a debug or remote-shell interface (see KNOWN_DEBUG_PORTS; SSH when the device's policy says it is off)."),
);
export type DebugPort = Static<typeof DebugPort>;

export const SshRootLogin = Type.Enum(['yes', 'prohibit-password', 'forced-commands-only', 'no'], {
  description: 'The weakest PermitRootLogin in force (`without-password` is read as `prohibit-password`; unset means `prohibit-password`, the OpenSSH default).',
});

export const SshPosture = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean({ description: 'An SSH server listens (a TCP socket on one of the configured SSH ports). Left out when the sockets cannot be read.' })),
    passwordAuth: Type.Optional(Type.Boolean({ description: 'Password login is on for some connection: PasswordAuthentication is `yes` (the OpenSSH default when unset) globally or in a Match block.' })),
    rootLogin: Type.Optional(SshRootLogin),
  },
  closed("The SSH server's settings, from sshd_config (and the files it includes) where readable."),
);
export type SshPosture = Static<typeof SshPosture>;

export const SerialConsolePosture = Type.Object(
  {
    enabled: Type.Boolean({ description: 'The kernel command line sends the console to a serial line (`console=ttyS0,115200`, `ttyAMA0`, `hvc0`, …).' }),
    consoles: Type.Optional(Type.Immutable(Type.Array(Type.String({ minLength: 1, maxLength: 32 }), { maxItems: L.consolesMaxItems, description: 'The serial consoles named.' }))),
  },
  closed('Whether the device offers a console on a serial line, from the kernel command line.'),
);

export const BootPosture = Type.Object(
  {
    slot: Type.Enum(['a', 'b'], { description: 'The A/B firmware slot that runs.' }),
    verified: Type.Boolean({ description: "The running slot's image matched its signed manifest (signatures to the pinned root, size and SHA-256) when the agent started." }),
    reason: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        pattern: POSTURE_TEXT_PATTERN,
        description:
          'Why it did not verify: `no_manifest` (a factory image, never updated, with no signed manifest kept for it: a warning), `manifest_missing` (the manifest of an image installed by an update is gone: a failure), `image_hash_mismatch`, `bad_signature`, … (the firmware refusal reasons).',
      }),
    ),
    detail: Type.Optional(Type.String({ maxLength: 256, pattern: POSTURE_TEXT_PATTERN, description: 'Human-readable detail of the reason, on one line (no control characters).' })),
  },
  closed('Verified boot (emulated for A/B slots): whether the image that runs is the one its signed manifest names.'),
);
export type BootPosture = Static<typeof BootPosture>;

export const DevicePosture = Type.Object(
  {
    listening: Type.Optional(Type.Immutable(Type.Array(ListeningSocket, { maxItems: L.listeningMaxItems, description: `Listening sockets, debug ports and non-loopback ones first (at most ${L.listeningMaxItems}).` }))),
    listeningTotal: Type.Optional(Type.Integer({ minimum: 0, description: 'How many listening sockets there were in all (more than listed when the list was cut).' })),
    debugPorts: Type.Optional(Type.Immutable(Type.Array(DebugPort, { maxItems: L.debugPortsMaxItems, description: 'Listening sockets on debug or remote-shell ports. Empty: none found (left out: the sockets could not be read).' }))),
    ssh: Type.Optional(SshPosture),
    serialConsole: Type.Optional(SerialConsolePosture),
    boot: Type.Optional(BootPosture),
  },
  closed('What the device gets right or wrong about its exposure: listening sockets, debug interfaces, SSH and serial console settings, verified boot. Parts it cannot read are left out.'),
);
export type DevicePosture = Static<typeof DevicePosture>;

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const FORWARDER = fileURLToPath(new URL('./ns-forwarder.mjs', import.meta.url));

/**
 * The kernel half of network impairment: a network namespace joined to this one by a veth
 * pair, with a forwarder inside it (ns-forwarder.mjs). Devices connect to the forwarder, so
 * every packet between them and the platform crosses the namespace, where an nftables rule
 * drops a share of them at random (`numgen random mod 100 < N drop`, both ways) and a `tbf`
 * qdisc on each end of the pair caps the bandwidth. Needs root, iproute2 and nftables.
 */
export class NetNamespace {
  #forwarder: ChildProcess | undefined;
  #ports: number[] = [];

  private constructor(
    readonly name: string,
    readonly hostIf: string,
    readonly nsIf: string,
    readonly hostIp: string,
    readonly nsIp: string,
  ) {}

  /** Why namespaces cannot be used here, or undefined when they can. */
  static async unavailable(): Promise<string | undefined> {
    if (process.getuid?.() !== 0) return 'not running as root';
    for (const [cmd, args] of [
      ['ip', ['-V']],
      ['nft', ['--version']],
      ['tc', ['-V']],
    ] as const) {
      try {
        await run(cmd, [...args]);
      } catch {
        return `${cmd} is not installed (Debian iproute2 and nftables)`;
      }
    }
    return undefined;
  }

  /** Makes the namespace and its veth pair (10.213.<k>.1 here, .2 inside). */
  static async create(tag: string): Promise<NetNamespace> {
    const k = 1 + Math.floor(Math.random() * 250);
    const short = `${tag.replace(/[^a-z0-9]/gi, '').slice(-6)}${k}`;
    const ns = new NetNamespace(`bwsim-${short}`, `bwh${short}`.slice(0, 15), `bwn${short}`.slice(0, 15), `10.213.${k}.1`, `10.213.${k}.2`);
    const ip = (...args: string[]) => run('ip', args);
    await ip('netns', 'add', ns.name);
    try {
      await ip('link', 'add', ns.hostIf, 'type', 'veth', 'peer', 'name', ns.nsIf);
      await ip('link', 'set', ns.nsIf, 'netns', ns.name);
      await ip('addr', 'add', `${ns.hostIp}/30`, 'dev', ns.hostIf);
      await ip('link', 'set', ns.hostIf, 'up');
      await ns.#exec('ip', 'addr', 'add', `${ns.nsIp}/30`, 'dev', ns.nsIf);
      await ns.#exec('ip', 'link', 'set', ns.nsIf, 'up');
      await ns.#exec('ip', 'link', 'set', 'lo', 'up');
    } catch (err) {
      await ns.close();
      throw err;
    }
    return ns;
  }

  #exec(cmd: string, ...args: string[]): Promise<unknown> {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args]);
  }

  /** Starts the forwarder: one port inside the namespace per target port on this side; returns them in order. */
  async forward(targetPorts: readonly number[]): Promise<number[]> {
    const child = spawn('ip', ['netns', 'exec', this.name, process.execPath, FORWARDER, this.hostIp, ...targetPorts.map(String)], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, BULWARK_NS_ADDRESS: this.nsIp },
    });
    this.#forwarder = child;
    const line = await new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      lines.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`the namespace's forwarder exited (${code}) before listening`)));
    });
    this.#ports = (JSON.parse(line) as { ports: number[] }).ports;
    return this.#ports;
  }

  /** Drops `percent` of the packets to and from the forwarder's ports, each way; 0 removes the rule. */
  async setLoss(percent: number): Promise<void> {
    const ports = this.#ports.join(', ');
    const n = Math.round(percent);
    const drop = n >= 100 ? 'drop' : `numgen random mod 100 < ${n} drop`;
    const rules =
      n <= 0 || this.#ports.length === 0
        ? ''
        : [`  chain input { type filter hook input priority 0; policy accept; tcp dport { ${ports} } ${drop}; }`, `  chain output { type filter hook output priority 0; policy accept; tcp sport { ${ports} } ${drop}; }`].join('\n');
    await this.#nft(`table inet bwsim {}\ndelete table inet bwsim\ntable inet bwsim {\n${rules}\n}\n`);
  }

  #nft(script: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', this.name, 'nft', '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`nft: ${err.trim()}`))));
      child.stdin?.end(script);
    });
  }

  /** Caps each direction at `kbit` (a token bucket on each end of the veth pair); null removes the cap. */
  async setBandwidth(kbit: number | null): Promise<void> {
    for (const [inside, dev] of [
      [false, this.hostIf],
      [true, this.nsIf],
    ] as const) {
      const args = kbit === null ? ['qdisc', 'del', 'dev', dev, 'root'] : ['qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${kbit}kbit`, 'burst', '32kb', 'latency', '400ms'];
      const done = inside ? this.#exec('tc', ...args) : run('tc', args);
      // Deleting a qdisc that is not there fails; that is the state wanted.
      await done.catch((err: unknown) => {
        if (kbit !== null) throw err;
      });
    }
  }

  async close(): Promise<void> {
    this.#forwarder?.stdin?.end();
    this.#forwarder?.kill();
    // Deleting the namespace deletes its end of the pair, and with it the other end.
    await run('ip', ['netns', 'del', this.name]).catch(() => undefined);
    await run('ip', ['link', 'del', this.hostIf]).catch(() => undefined);
  }
}

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { type AddressInfo, type Socket, connect, createServer } from 'node:net';
import { describe, it } from 'node:test';
import { NetNamespace } from './netns.js';

/**
 * The kernel half of impairment, with real parts: a network namespace, a veth pair, the
 * forwarder inside it, nftables dropping packets and tbf capping the rate. Needs root,
 * iproute2 and nftables: skipped (and said) without them, a failure in CI.
 */
const why = await NetNamespace.unavailable();

function suite(body: () => void): void {
  if (why === undefined) {
    void describe('network namespace impairment', body);
  } else if (process.env.CI === 'true') {
    void describe('network namespace impairment', () => void it('needs root, iproute2 and nftables', () => assert.fail(`${why}; CI=true: apt-get install iproute2 nftables, run as root`)));
  } else {
    process.stderr.write(`network namespace impairment: SKIPPED, ${why}\n`);
    void describe('network namespace impairment', { skip: why }, () => undefined);
  }
}

suite(() => {
  it("carries devices' connections through the namespace; 100 % loss stops them, TCP delivers once it is lifted; a bandwidth cap is in place on both ends", { timeout: 60_000 }, async (t) => {
    const ns = await NetNamespace.create('test');
    t.after(() => ns.close());
    // An echo server on the host end of the pair, as the impairment proxy's lanes listen there.
    const echo = createServer((s) => s.on('error', () => undefined).pipe(s));
    await new Promise<void>((r) => echo.listen(0, ns.hostIp, r));
    t.after(() => new Promise((r) => echo.close(r)));
    const [port] = await ns.forward([(echo.address() as AddressInfo).port]);
    const socket: Socket = connect(port as number, ns.nsIp);
    socket.on('error', () => undefined);
    t.after(() => socket.destroy());
    await new Promise((r) => socket.once('connect', r));
    const heard: string[] = [];
    socket.on('data', (d) => heard.push(d.toString()));
    const arrived = (text: string) =>
      new Promise<void>((resolve) => {
        const check = () => (heard.join('').includes(text) ? resolve() : socket.once('data', check));
        check();
      });
    socket.write('before');
    await arrived('before');

    await ns.setLoss(100);
    socket.write('during');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(heard.join('').includes('during'), false, 'every packet dropped');
    await ns.setLoss(0);
    await arrived('during');

    await ns.setBandwidth(800);
    for (const dev of [`ip netns exec ${ns.name} tc qdisc show dev ${ns.nsIf}`, `tc qdisc show dev ${ns.hostIf}`]) {
      assert.match(execFileSync('sh', ['-c', dev]).toString(), /tbf .*rate 800Kbit/, dev);
    }
    socket.write('capped');
    await arrived('capped');
    await ns.setBandwidth(null);
    assert.doesNotMatch(execFileSync('tc', ['qdisc', 'show', 'dev', ns.hostIf]).toString(), /tbf/);
  });
});

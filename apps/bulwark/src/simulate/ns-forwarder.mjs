// Runs inside the simulator's network namespace (`ip netns exec NS node ns-forwarder.mjs HOST PORT…`):
// for each target port on the host side of the veth pair, a listener on this namespace's
// address that forwards every connection to it. Devices connect here, so their traffic
// crosses the namespace, where nftables drops packets and tbf caps the bandwidth. Plain
// JavaScript: it runs on node alone, without the TypeScript loader. Prints one JSON line
// with its listening ports, then runs until stdin closes (its parent went away).
import { createServer, connect } from 'node:net';

const [host, ...targets] = process.argv.slice(2);
const listenOn = process.env.BULWARK_NS_ADDRESS ?? '0.0.0.0';
const ports = [];
for (const target of targets.map(Number)) {
  const server = createServer((device) => {
    const platform = connect(target, host);
    const end = () => {
      device.destroy();
      platform.destroy();
    };
    device.on('error', end).on('close', end);
    platform.on('error', end).on('close', end);
    device.pipe(platform);
    platform.pipe(device);
  });
  await new Promise((resolve) => server.listen(0, listenOn, resolve));
  ports.push(server.address().port);
}
process.stdout.write(`${JSON.stringify({ ports })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));

// A minimal Bulwark webhook receiver in plain Node: checks the signature, drops readings it
// has already seen (deliveries are at least once), answers 2xx only once a batch is handled.
//   WEBHOOK_SECRET=whsec_… PORT=8787 node examples/webhook-receiver/receiver.mjs
// Put it behind HTTPS (a reverse proxy with a certificate): Bulwark sends only to https:// URLs.
import { createServer } from 'node:http';
import { checkSignature } from './verify.mjs';

const secret = process.env.WEBHOOK_SECRET;
if (!secret) {
  console.error('set WEBHOOK_SECRET to the secret bulwark webhooks create printed');
  process.exit(2);
}
const MAX_BODY = 8 * 1024 * 1024;
/** Reading ids already handled. A real receiver keeps these in its database, with the readings. */
const seen = new Set();

createServer((req, res) => {
  if (req.method !== 'POST') return res.writeHead(405).end();
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY) req.destroy();
    else chunks.push(c);
  });
  req.on('end', () => {
    const raw = Buffer.concat(chunks);
    const problem = checkSignature(secret, req.headers['bulwark-signature'], raw);
    if (problem) {
      console.warn(`refused delivery ${req.headers['bulwark-delivery-id']}: ${problem}`);
      return res.writeHead(401).end(problem);
    }
    const batch = JSON.parse(raw.toString('utf8'));
    if (batch.test) console.log(`test delivery ${batch.id} from webhook ${batch.subscription}`);
    for (const reading of batch.readings) {
      if (seen.has(reading.id)) continue; // a redelivery: same id, already handled
      seen.add(reading.id);
      console.log(reading.deviceId, new Date(reading.ts).toISOString(), reading.schemaId, JSON.stringify(reading.data));
    }
    res.writeHead(204).end();
  });
}).listen(Number(process.env.PORT ?? 8787), () => console.log(`listening on ${process.env.PORT ?? 8787}`));

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Test-only: a manufacturer's own root CA, its CRL and device certificates, all made by OpenSSL. */
export function manufacturerCa(dir: string) {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'mca.key',
    '-out',
    'mca.pem',
    '-subj',
    '/CN=Acme Factory CA',
    '-days',
    '30',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  writeFileSync(join(dir, 'ca.cnf'), '[ca]\ndefault_ca=c\n[c]\ndatabase=index.txt\ndefault_md=sha256\ncrlnumber=crlnum\n');
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'crlnum'), '01\n');
  run('ca', '-config', 'ca.cnf', '-gencrl', '-keyfile', 'mca.key', '-cert', 'mca.pem', '-out', 'mca.crl', '-crldays', '5');
  const device = (id: string) => {
    run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${id}.key`, '-out', `${id}.csr`, '-subj', `/CN=${id}`);
    run('x509', '-req', '-in', `${id}.csr`, '-CA', 'mca.pem', '-CAkey', 'mca.key', '-CAcreateserial', '-out', `${id}.pem`, '-days', '10');
    return { keyPem: readFileSync(join(dir, `${id}.key`), 'utf8'), certPem: readFileSync(join(dir, `${id}.pem`), 'utf8') };
  };
  const revoke = (id: string) => {
    run('ca', '-config', 'ca.cnf', '-revoke', `${id}.pem`, '-keyfile', 'mca.key', '-cert', 'mca.pem');
    run('ca', '-config', 'ca.cnf', '-gencrl', '-keyfile', 'mca.key', '-cert', 'mca.pem', '-out', 'mca.crl', '-crldays', '5');
    return readFileSync(join(dir, 'mca.crl'), 'utf8');
  };
  return { certPem: readFileSync(join(dir, 'mca.pem'), 'utf8'), crlPem: readFileSync(join(dir, 'mca.crl'), 'utf8'), device, revoke };
}

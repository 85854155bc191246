import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig, parseAddressRanges } from './index.js';

describe('address ranges (gateway.proxyProtocolFrom)', () => {
  it('reads addresses and CIDR ranges of both families, spaces and empty entries ignored', () => {
    assert.deepEqual(parseAddressRanges(' 10.0.0.5, 10.1.0.0/16 ,, fd00::/8, ::1 '), {
      ranges: [
        { address: '10.0.0.5', prefix: 32, family: 'ipv4' },
        { address: '10.1.0.0', prefix: 16, family: 'ipv4' },
        { address: 'fd00::', prefix: 8, family: 'ipv6' },
        { address: '::1', prefix: 128, family: 'ipv6' },
      ],
      problems: [],
    });
    assert.deepEqual(parseAddressRanges(''), { ranges: [], problems: [] });
  });

  it('names every entry that is not an address or a range, /0 (everyone) included', () => {
    const { problems } = parseAddressRanges('lb.internal, 10.0.0.0/33, 10.0.0.0/0, 300.1.1.1, fd00::/129, 10.0.0.1/24/8, 10.0.0.0/x, ::/0');
    assert.equal(problems.length, 8);
    assert.match(problems[0] ?? '', /"lb\.internal" is not an IPv4 or IPv6 address/);
  });

  it('is a configuration error, reported with the other problems (the CLI exits 2 on it)', () => {
    assert.throws(
      () => loadConfig({ env: { BULWARK_GATEWAY_PROXY_PROTOCOL_FROM: '10.0.0.1, haproxy' } }),
      (err: Error & { code?: string; details?: { problems?: string[] } }) => {
        assert.equal(err.code, 'BULWARK_ERR_CONFIG_INVALID');
        assert.deepEqual(err.details?.problems, ['gateway.proxyProtocolFrom: "haproxy" is not an IPv4 or IPv6 address or a CIDR range (address/1-32 or 128)']);
        return true;
      },
    );
    assert.equal(loadConfig({ file: { gateway: { proxyProtocolFrom: '10.0.0.0/24' } } }).gateway.proxyProtocolFrom, '10.0.0.0/24');
    assert.equal(loadConfig({}).gateway.proxyProtocolFrom, '', 'off by default');
  });
});

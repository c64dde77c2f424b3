import { expect } from 'chai';
import { parseAuthChallenges, parseNextLink, parseRateLimit, parseRateLimitNumber, parseRetryAfter } from '../../../src/registry/http-headers.js';

describe('parseAuthChallenges', () => {
  it('reads a basic challenge', () => {
    expect(parseAuthChallenges('Basic realm="keelson-test"')).to.deep.equal([{ scheme: 'basic', params: { realm: 'keelson-test' } }]);
  });

  it('reads a bearer challenge with realm, service and scope (Docker Hub)', () => {
    expect(parseAuthChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"'))
      .to.deep.equal([{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/nginx:pull' } }]);
  });

  it('keeps commas inside quoted values and reads escaped quotes', () => {
    const [challenge] = parseAuthChallenges('Bearer realm="https://t/token", scope="repository:a:pull,push", error="say \\"no\\""');
    expect(challenge!.params).to.deep.equal({ realm: 'https://t/token', scope: 'repository:a:pull,push', error: 'say "no"' });
  });

  it('reads several challenges in one header and across header lines', () => {
    expect(parseAuthChallenges('Basic realm="a", Bearer realm="https://b",service=s').map((c) => c.scheme)).to.deep.equal(['basic', 'bearer']);
    expect(parseAuthChallenges(['Basic realm="a"', 'Bearer realm="https://b"']).map((c) => c.params.realm)).to.deep.equal(['a', 'https://b']);
  });

  it('accepts unquoted values and odd spacing, and lowercases scheme and names', () => {
    expect(parseAuthChallenges('BEARER  Realm = https://t/token ,Service=reg')).to.deep.equal([{ scheme: 'bearer', params: { realm: 'https://t/token', service: 'reg' } }]);
  });

  it('gives nothing for an absent or empty header', () => {
    expect(parseAuthChallenges(undefined)).to.deep.equal([]);
    expect(parseAuthChallenges('')).to.deep.equal([]);
  });
});

describe('parseNextLink', () => {
  const request = 'http://127.0.0.1:5000/v2/team/app/tags/list?n=1';

  it('resolves distribution\'s relative next link against the request URL', () => {
    expect(parseNextLink('</v2/team/app/tags/list?last=1.0.0&n=1>; rel="next"', request)?.href)
      .to.equal('http://127.0.0.1:5000/v2/team/app/tags/list?last=1.0.0&n=1');
  });

  it('keeps an absolute link and finds next among several relations', () => {
    expect(parseNextLink('<https://r.example/v2/a/tags/list?page=1>; rel="prev", <https://r.example/v2/a/tags/list?page=3>; rel=next', request)?.href)
      .to.equal('https://r.example/v2/a/tags/list?page=3');
  });

  it('gives undefined without a next relation or header', () => {
    expect(parseNextLink('</v2/a/tags/list?page=1>; rel="prev"', request)).to.equal(undefined);
    expect(parseNextLink(undefined, request)).to.equal(undefined);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const cases: [string | undefined, number | undefined][] = [
    ['120', 120_000],
    ['0', 0],
    ['Thu, 01 Jan 2026 00:00:30 GMT', 30_000],
    ['Wed, 31 Dec 2025 23:59:00 GMT', 0],
    ['soon', undefined],
    ['-5', undefined],
    ['1.5', undefined],
    ['', undefined],
    [undefined, undefined],
  ];
  for (const [value, expected] of cases) {
    it(`reads ${JSON.stringify(value)} as ${expected} ms`, () => expect(parseRetryAfter(value, now)).to.equal(expected));
  }
});

describe('parseRateLimitNumber', () => {
  it('reads Docker Hub\'s "100;w=21600" and plain numbers', () => {
    expect(parseRateLimitNumber('100;w=21600')).to.equal(100);
    expect(parseRateLimitNumber('7')).to.equal(7);
    expect(parseRateLimitNumber('none')).to.equal(undefined);
    expect(parseRateLimitNumber(undefined)).to.equal(undefined);
  });
});

describe('parseRateLimit', () => {
  const cases: ReadonlyArray<[string | undefined, ReturnType<typeof parseRateLimit>]> = [
    ['100;w=21600', { count: 100, windowSeconds: 21600 }],
    ['76;w=21600', { count: 76, windowSeconds: 21600 }],
    [' 0 ; w = 60', { count: 0, windowSeconds: 60 }],
    ['7', { count: 7 }],
    ['7;comment="x"', { count: 7 }],
    ['none', undefined],
    [undefined, undefined],
  ];
  for (const [value, expected] of cases) {
    it(`reads ${JSON.stringify(value)}`, () => expect(parseRateLimit(value)).to.deep.equal(expected));
  }
});

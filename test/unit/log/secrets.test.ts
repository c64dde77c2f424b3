import { expect } from 'chai';
import { encodedForms, redactSecrets, registerSecret, StreamRedactor } from '../../../src/log/index.js';

describe('secret redaction', () => {
  const secret = 'Tok3n-for-unit-tests!';
  before(() => registerSecret(secret));

  it('hides a secret in base64 wherever it sits in a longer encoded text', () => {
    for (const prefix of ['', 'B', 'Be', 'Bearer ', 'user:', 'xy:']) {
      for (const suffix of ['', '\n', 'zz']) {
        const plain = `${prefix}${secret}${suffix}`;
        for (const encoded of [Buffer.from(plain).toString('base64'), Buffer.from(plain).toString('base64url')]) {
          const out = redactSecrets(`body: ${encoded}`);
          expect(out, plain).to.contain('[REDACTED]');
          expect(Buffer.from(out.slice(6), 'base64').toString('latin1')).not.to.contain(secret.slice(2, -2));
        }
      }
    }
  });

  it('hides URL-encoded forms, upper- and lower-case escapes and form encoding', () => {
    const odd = 'p@ss word/+&x';
    registerSecret(odd);
    for (const form of [encodeURIComponent(odd), encodeURIComponent(odd).toLowerCase(), new URLSearchParams({ a: odd }).toString().slice(2)]) {
      expect(redactSecrets(`?password=${form}&next=1`)).to.equal('?password=[REDACTED]&next=1');
    }
  });

  it('does not hide encodings too short to tell apart from ordinary text', () => {
    expect(encodedForms('abcd')).to.deep.equal(['abcd']);
  });

  it('redacts a stream cut anywhere, holding back only what may begin a secret', () => {
    const text = `one ${secret} two ${Buffer.from(secret).toString('base64')} three ${secret.slice(0, 5)}`;
    for (let cut = 0; cut <= text.length; cut++) {
      const stream = new StreamRedactor();
      const first = stream.push(text.slice(0, cut));
      const out = first + stream.push(text.slice(cut)) + stream.flush();
      expect(out).to.equal(`one [REDACTED] two [REDACTED] three ${secret.slice(0, 5)}`);
    }
    const stream = new StreamRedactor();
    expect(stream.push('plain line\n')).to.equal('plain line\n');
    expect(stream.push(`x ${secret.slice(0, 6)}`)).to.equal('x ');
    expect(stream.flush()).to.equal(secret.slice(0, 6));
  });
});

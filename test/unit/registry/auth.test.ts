import { expect } from 'chai';
import { AuthState, chooseChallenge, repositoryScope } from '../../../src/registry/auth.js';
import { parseAuthChallenges } from '../../../src/registry/http-headers.js';
import { TokenBucket } from '../../../src/registry/token-bucket.js';
import { TokenResponse } from '../../../src/registry/schema.js';

describe('bearer token handling', () => {
  const bearer = parseAuthChallenges('Bearer realm="https://auth.example/token",service="registry.example"')[0]!;

  it('prefers a bearer challenge over basic, and ignores a bearer without realm', () => {
    expect(chooseChallenge(parseAuthChallenges('Basic realm="r", Bearer realm="https://t",service="s"'))?.scheme).to.equal('bearer');
    expect(chooseChallenge(parseAuthChallenges('Bearer service="s", Basic realm="r"'))?.scheme).to.equal('basic');
    expect(chooseChallenge(parseAuthChallenges('Negotiate abc'))).to.equal(undefined);
  });

  it('asks for pull scope on the repository', () => {
    expect(repositoryScope('team/app')).to.equal('repository:team/app:pull');
    expect(repositoryScope('team/app', ['pull', 'push'])).to.equal('repository:team/app:pull,push');
  });

  it('reuses a token per realm, service, scope and user until 90% of expires_in has passed', async () => {
    let now = 1_000_000;
    const state = new AuthState(() => now);
    let fetches = 0;
    const fetch = async () => ({ token: `t${++fetches}`, expiresIn: 100 });
    const key = AuthState.tokenKey(bearer, repositoryScope('team/app'), 'bot');
    expect(await state.token(key, fetch)).to.equal('t1');
    now += 89_000;
    expect(await state.token(key, fetch)).to.equal('t1');
    expect(await state.token(AuthState.tokenKey(bearer, repositoryScope('team/other'), 'bot'), fetch)).to.equal('t2');
    expect(await state.token(AuthState.tokenKey(bearer, repositoryScope('team/app'), undefined), fetch)).to.equal('t3');
    now += 1_000;
    expect(await state.token(key, fetch)).to.equal('t4');
  });

  it('assumes 60 s when the token server gives no expires_in', async () => {
    let now = 0;
    const state = new AuthState(() => now);
    const key = AuthState.tokenKey(bearer, 'repository:a:pull', undefined);
    state.storeToken(key, 'tok');
    now = 53_999;
    expect(state.cachedToken(key)).to.equal('tok');
    now = 54_000;
    expect(state.cachedToken(key)).to.equal(undefined);
  });

  it('shares one fetch between concurrent callers and forgets a failed one', async () => {
    const state = new AuthState();
    let fetches = 0;
    const key = AuthState.tokenKey(bearer, 'repository:a:pull', undefined);
    const slow = () => new Promise<{ token: string }>((resolve) => setImmediate(() => resolve({ token: `t${++fetches}` })));
    expect(await Promise.all([state.token(key, slow), state.token(key, slow)])).to.deep.equal(['t1', 't1']);
    state.forgetToken(key);
    const other = AuthState.tokenKey(bearer, 'repository:b:pull', undefined);
    const error = await state.token(other, () => Promise.reject(new Error('refused'))).catch((e: Error) => e.message);
    expect(error).to.equal('refused');
    expect(await state.token(other, slow)).to.equal('t2');
  });

  it('reads token responses tolerantly: token or access_token, unknown fields ignored', () => {
    expect(TokenResponse.parse({ token: 'a', expires_in: 300, issued_at: '2026-01-01T00:00:00Z', extra: true })).to.deep.include({ token: 'a', expires_in: 300 });
    expect(TokenResponse.parse({ access_token: 'b' }).access_token).to.equal('b');
    expect(TokenResponse.parse({ token: 'c', expires_in: 'soon' }).expires_in).to.equal(undefined);
    expect(TokenResponse.safeParse({ expires_in: 60 }).success).to.equal(false);
  });
});

describe('TokenBucket', () => {
  it('allows a burst, then one request per 1/rate seconds', () => {
    let now = 0;
    const bucket = new TokenBucket(2, 2, () => now);
    expect(bucket.waitTime()).to.equal(0);
    return (async () => {
      await bucket.take();
      await bucket.take();
      expect(bucket.waitTime()).to.equal(500);
      now += 250;
      expect(bucket.waitTime()).to.equal(250);
      now += 250;
      expect(bucket.waitTime()).to.equal(0);
      now += 10_000;
      await bucket.take();
      await bucket.take();
      expect(bucket.waitTime()).to.be.greaterThan(0);
    })();
  });

  it('stops waiting when aborted', async () => {
    const bucket = new TokenBucket(0.001, 1);
    await bucket.take();
    const controller = new AbortController();
    const waiting = bucket.take(controller.signal);
    controller.abort(new Error('aborted by test'));
    expect(await waiting.catch((e: Error) => e.message)).to.equal('aborted by test');
  });
});

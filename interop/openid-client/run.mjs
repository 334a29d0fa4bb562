// panva's openid-client (certified RP library) against `candor dev`.
// Run: cargo build -p candor && cd interop/openid-client && npm ci && node run.mjs
import * as client from 'openid-client';
import * as oauth from 'oauth4webapi';
import * as jose from 'jose';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCandor, admin, browse, checks, assert } from '../common.mjs';

const REDIRECT = 'http://localhost:3000/callback';
// A store the admin commands can reach while Candor runs: the private_key_jwt client is added to it.
const dataDir = mkdtempSync(path.join(tmpdir(), 'candor-interop-'));
// Server nonces on (RFC 9449 §8): the library's DPoP requests must fetch and retry with one.
// Open registration (RFC 7591) too: the library registers a client of its own.
const candor = await startCandor({ dataDir, args: ['--dpop-nonce', '--registration'] });
let code = 0;
try {
  const config = await client.discovery(
    new URL(candor.issuer), 'demo-app', candor.secret, client.ClientSecretBasic(candor.secret),
    { execute: [client.allowInsecureRequests] }, // the dev issuer is http on loopback
  );
  let tokens;
  let latest;
  let callback;
  let verifier;
  const authorize = async () => {
    verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT, scope: 'openid profile email offline_access', state, nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    callback = new URL(await browse(url.href, REDIRECT, 'demo', candor.password));
    return { state, nonce };
  };
  // One code flow through the login form with PKCE S256 and state, both checked by the library:
  // `params` go to the authorization request, `grantParams`/`grantOptions` to the exchange.
  const signIn = async (cfg, scope, { jar, params = {}, grantParams, grantOptions } = {}) => {
    const v = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(cfg, {
      redirect_uri: REDIRECT, scope, state, ...params,
      code_challenge: await client.calculatePKCECodeChallenge(v), code_challenge_method: 'S256',
    });
    const back = new URL(await browse(url.href, REDIRECT, 'demo', candor.password, 'allow', jar));
    return client.authorizationCodeGrant(cfg, back, { pkceCodeVerifier: v, expectedState: state }, grantParams, grantOptions);
  };
  code = await checks('openid-client', [
    ['discovery', async () => assert(config.serverMetadata().issuer === candor.issuer, 'issuer differs')],
    ['authorization with PKCE S256, state and nonce through the login form', async () => {
      const { state, nonce } = await authorize();
      tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
    }],
    ['ID token validated by the library (signature, iss, aud, exp, nonce, at_hash)', async () => {
      const claims = tokens.claims();
      assert(claims && claims.aud === 'demo-app' && claims.sub, `claims: ${JSON.stringify(claims)}`);
    }],
    ['userinfo', async () => {
      const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub);
      assert(info.preferred_username === 'demo' && info.email === 'demo@example.com', JSON.stringify(info));
    }],
    ['refresh rotates the refresh token', async () => {
      latest = await client.refreshTokenGrant(config, tokens.refresh_token);
      assert(latest.refresh_token && latest.refresh_token !== tokens.refresh_token, 'no rotation');
      assert(latest.claims()?.sub === tokens.claims().sub, 'refreshed ID token');
    }],
    ['client_credentials', async () => {
      const cc = await client.clientCredentialsGrant(config);
      assert(cc.access_token && !cc.refresh_token, JSON.stringify(cc));
    }],
    ['introspection (RFC 7662): the access token is active, with its client and subject', async () => {
      const r = await client.tokenIntrospection(config, latest.access_token);
      assert(r.active === true && r.client_id === 'demo-app' && r.sub === tokens.claims().sub && r.token_type === 'Bearer', JSON.stringify(r));
      const old = await client.tokenIntrospection(config, tokens.refresh_token, { token_type_hint: 'refresh_token' });
      assert(old.active === false, `a rotated refresh token: ${JSON.stringify(old)}`);
    }],
    ['revocation (RFC 7009): the refresh token takes its family with it', async () => {
      await client.tokenRevocation(config, latest.refresh_token, { token_type_hint: 'refresh_token' });
      const r = await client.tokenIntrospection(config, latest.access_token);
      assert(r.active === false, `the family's access token: ${JSON.stringify(r)}`);
      const reply = await client.refreshTokenGrant(config, latest.refresh_token).then(() => null, (e) => e);
      assert(reply?.error === 'invalid_grant' && reply.cause?.reason === 'refresh_token_revoked', `got ${reply?.error ?? 'success'} ${reply?.cause?.reason}`);
    }],
    ['private_key_jwt (RFC 7523): an ES256 assertion signed by the library authenticates at /token and /introspect', async () => {
      const { publicKey, privateKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
      const jwk = { ...(await crypto.subtle.exportKey('jwk', publicKey)), kid: 'interop-1', alg: 'ES256', use: 'sig' };
      delete jwk.key_ops;
      delete jwk.ext;
      const keys = path.join(dataDir, 'signed-app.jwks.json');
      writeFileSync(keys, JSON.stringify({ keys: [jwk] }));
      admin(dataDir, ['client', 'add', '--name', 'Signed app', '--id', 'signed-app', '--grant', 'client_credentials',
        '--auth-method', 'private_key_jwt', '--jwks', keys, '--scope', 'openid']);
      const signed = await client.discovery(
        new URL(candor.issuer), 'signed-app', {}, client.PrivateKeyJwt({ key: privateKey, kid: 'interop-1' }),
        { execute: [client.allowInsecureRequests] },
      );
      const cc = await client.clientCredentialsGrant(signed);
      assert(cc.access_token, JSON.stringify(cc));
      const r = await client.tokenIntrospection(signed, cc.access_token);
      assert(r.active === true && r.client_id === 'signed-app', JSON.stringify(r));
    }],
    ['pushed authorization request (RFC 9126): buildAuthorizationUrlWithPAR, then the flow', async () => {
      const parVerifier = client.randomPKCECodeVerifier();
      const parState = client.randomState();
      const url = await client.buildAuthorizationUrlWithPAR(config, {
        redirect_uri: REDIRECT, scope: 'openid', state: parState,
        code_challenge: await client.calculatePKCECodeChallenge(parVerifier), code_challenge_method: 'S256',
      });
      assert(url.searchParams.get('request_uri')?.startsWith('urn:ietf:params:oauth:request_uri:') && !url.searchParams.has('redirect_uri'), url.href);
      const back = new URL(await browse(url.href, REDIRECT, 'demo', candor.password));
      const t = await client.authorizationCodeGrant(config, back, { pkceCodeVerifier: parVerifier, expectedState: parState });
      assert(t.access_token, JSON.stringify(t));
    }],
    ['resource indicators (RFC 8707) and JWT access tokens (RFC 9068), validated by oauth4webapi as a resource server would', async () => {
      const API = 'https://api.interop.example/';
      admin(dataDir, ['resource', 'add', '--id', API, '--name', 'Interop API', '--scope', 'api:read', '--alg', 'ES256']);
      const added = admin(dataDir, ['client', 'add', '--name', 'API app', '--id', 'api-app', '--redirect-uri', REDIRECT,
        '--resource', API, '--scope', 'openid', '--scope', 'offline_access', '--scope', 'api:read']);
      const secret = added.match(/client_secret:\s+(\S+)/)[1];
      const apiConfig = await client.discovery(
        new URL(candor.issuer), 'api-app', secret, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] },
      );
      const t = await signIn(apiConfig, 'openid offline_access api:read', { params: { resource: API }, grantParams: { resource: API } });
      assert(t.scope === 'api:read' && t.claims()?.aud === 'api-app', JSON.stringify(t));
      const asMeta = apiConfig.serverMetadata();
      const bearer = (token) => new Request(API, { headers: { authorization: `Bearer ${token}` } });
      const claims = await oauth.validateJwtAccessToken(asMeta, bearer(t.access_token), API, { [oauth.allowInsecureRequests]: true });
      assert(claims.client_id === 'api-app' && claims.scope === 'api:read' && claims.sub === t.claims().sub, JSON.stringify(claims));
      const wrongAudience = await oauth.validateJwtAccessToken(asMeta, bearer(t.access_token), 'https://other.example/', { [oauth.allowInsecureRequests]: true })
        .then(() => null, (e) => e);
      assert(wrongAudience, 'another resource must refuse the token');
      const refreshed = await client.refreshTokenGrant(apiConfig, t.refresh_token, { resource: API });
      await oauth.validateJwtAccessToken(asMeta, bearer(refreshed.access_token), API, { [oauth.allowInsecureRequests]: true });
      const notGranted = await client.refreshTokenGrant(apiConfig, refreshed.refresh_token, { resource: 'https://other.example/' })
        .then(() => null, (e) => e);
      assert(notGranted?.error === 'invalid_target' && notGranted.cause?.reason === 'resource_not_granted', `got ${notGranted?.error} ${notGranted?.cause?.reason}`);
      // The ID token is no access token: the library's own RFC 9068 check refuses it (typ), and so does Candor.
      const idAsAccess = await oauth.validateJwtAccessToken(asMeta, bearer(t.id_token), API, { [oauth.allowInsecureRequests]: true })
        .then(() => null, (e) => e);
      assert(idAsAccess, 'an ID token must not pass as an access token');
      const info = await client.fetchUserInfo(apiConfig, t.id_token, t.claims().sub).then(() => null, (e) => e);
      const challenge = info?.cause?.[0];
      const body = await info?.response?.json().catch(() => null);
      assert(info?.status === 401 && challenge?.parameters?.error === 'invalid_token' && body?.reason === 'id_token_as_access_token',
        `userinfo with the ID token: ${info?.message} ${JSON.stringify(challenge)} ${JSON.stringify(body)}`);
    }],
    ['DPoP (RFC 9449) with server nonces: tokens bound to a key the library generates, proofs at /token and /userinfo', async () => {
      const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
      const t = await signIn(config, 'openid offline_access', { grantOptions: { DPoP: dpop } });
      assert(t.token_type?.toLowerCase() === 'dpop', `token_type ${t.token_type}`);
      const info = await client.fetchUserInfo(config, t.access_token, t.claims().sub, { DPoP: dpop });
      assert(info.sub === t.claims().sub, JSON.stringify(info));
      const intro = await client.tokenIntrospection(config, t.access_token);
      assert(intro.active && intro.token_type === 'DPoP' && typeof intro.cnf?.jkt === 'string', JSON.stringify(intro));
      const next = await client.refreshTokenGrant(config, t.refresh_token, undefined, { DPoP: dpop });
      assert(next.token_type?.toLowerCase() === 'dpop', `refreshed token_type ${next.token_type}`);
      // Without the key the bound token is refused as a bearer token, and Candor says why.
      const bare = await client.fetchUserInfo(config, next.access_token, t.claims().sub).then(() => null, (e) => e);
      const body = await bare?.response?.json().catch(() => null);
      assert(bare?.status === 401 && body?.reason === 'access_token_dpop_bound', `without DPoP: ${bare?.message} ${JSON.stringify(body)}`);
    }],
    ['device authorization grant (RFC 8628): the library polls while the user enters the code, signs in and approves', async () => {
      admin(dataDir, ['client', 'add', '--name', 'Living room TV', '--id', 'tv-app', '--public',
        '--grant', 'device_code', '--grant', 'refresh_token']);
      const tv = await client.discovery(new URL(candor.issuer), 'tv-app', undefined, client.None(),
        { execute: [client.allowInsecureRequests] });
      const started = await client.initiateDeviceAuthorization(tv, { scope: 'openid profile offline_access' });
      assert(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/.test(started.user_code), JSON.stringify(started));
      const polling = client.pollDeviceAuthorizationGrant(tv, started);
      const done = await browse(started.verification_uri_complete, '/device?result=', 'demo', candor.password);
      assert(done === '/device?result=approved', `the page ended at ${done}`);
      const t = await polling;
      assert(t.claims()?.aud === 'tv-app' && t.refresh_token, JSON.stringify(t));
      const info = await client.fetchUserInfo(tv, t.access_token, t.claims().sub);
      assert(info.preferred_username === 'demo', JSON.stringify(info));
      const next = await client.refreshTokenGrant(tv, t.refresh_token);
      assert(next.access_token && next.refresh_token !== t.refresh_token, 'refresh of a device grant');
      // A denied device: the library stops polling with access_denied, and Candor names it.
      const again = await client.initiateDeviceAuthorization(tv, { scope: 'openid' });
      const refused = client.pollDeviceAuthorizationGrant(tv, again).then(() => null, (e) => e);
      await browse(again.verification_uri_complete, '/device?result=', 'demo', candor.password, 'deny');
      const e = await refused;
      assert(e?.error === 'access_denied' && e.cause?.reason === 'device_access_denied', `got ${e?.error ?? 'success'} ${e?.cause?.reason}`);
    }],
    ['RP-initiated logout (buildEndSessionUrl) and back-channel logout: a logout token jose verifies, the online grant revoked', async () => {
      const received = [];
      const rpServer = http.createServer((req, res) => {
        let body = '';
        req.on('data', (chunk) => { body += chunk; });
        req.on('end', () => {
          received.push({ type: req.headers['content-type'], token: new URLSearchParams(body).get('logout_token') });
          res.writeHead(200).end();
        });
      });
      await new Promise((ready) => rpServer.listen(0, '127.0.0.1', ready));
      const BYE = 'http://localhost:3000/bye';
      try {
        const added = admin(dataDir, ['client', 'add', '--name', 'Logout app', '--id', 'logout-app', '--redirect-uri', REDIRECT,
          '--post-logout-redirect-uri', BYE, '--backchannel-logout-uri', `http://127.0.0.1:${rpServer.address().port}/backchannel`,
          '--backchannel-logout-session-required']);
        const secret = added.match(/client_secret:\s+(\S+)/)[1];
        const rp = await client.discovery(
          new URL(candor.issuer), 'logout-app', secret, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] },
        );
        const meta = rp.serverMetadata();
        assert(meta.end_session_endpoint === `${candor.issuer}/logout` && meta.backchannel_logout_session_supported === true, JSON.stringify(meta));
        const jar = new Map();
        const t = await signIn(rp, 'openid', { jar });
        const sid = t.claims()?.sid;
        assert(typeof sid === 'string' && sid.length > 0, `no sid in the ID token: ${JSON.stringify(t.claims())}`);
        const logoutState = client.randomState();
        const end = client.buildEndSessionUrl(rp, { id_token_hint: t.id_token, post_logout_redirect_uri: BYE, state: logoutState });
        const landed = new URL(await browse(end.href, BYE, 'demo', candor.password, 'allow', jar));
        assert(landed.searchParams.get('state') === logoutState, `landed at ${landed.href}`);
        assert(!jar.has('candor_session'), 'the session cookie is cleared');
        assert(received.length === 1 && received[0].type === 'application/x-www-form-urlencoded', JSON.stringify(received));
        const { payload } = await jose.jwtVerify(received[0].token, jose.createRemoteJWKSet(new URL(meta.jwks_uri)), {
          issuer: candor.issuer, audience: 'logout-app', typ: 'logout+jwt', maxTokenAge: '2 minutes', requiredClaims: ['jti', 'iat', 'exp'],
        });
        assert(payload.sid === sid && payload.sub === t.claims().sub && !('nonce' in payload)
          && JSON.stringify(payload.events) === '{"http://schemas.openid.net/event/backchannel-logout":{}}', JSON.stringify(payload));
        const r = await client.tokenIntrospection(rp, t.access_token);
        assert(r.active === false, `the session's online access token: ${JSON.stringify(r)}`);
      } finally {
        rpServer.close();
      }
    }],
    ['dynamic client registration (RFC 7591) by the library, the flow with its client, then RFC 7592 read and delete', async () => {
      const reg = await client.dynamicClientRegistration(new URL(candor.issuer), {
        client_name: 'Registered by openid-client', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'client_secret_basic', scope: 'openid offline_access',
      }, client.ClientSecretBasic(), { execute: [client.allowInsecureRequests] });
      const meta = reg.clientMetadata();
      assert(meta.client_id && meta.client_secret?.startsWith('cds_') && meta.registration_access_token?.startsWith('cdm_')
        && meta.registration_client_uri === `${candor.issuer}/register/${meta.client_id}`, JSON.stringify(meta));
      const t = await signIn(reg, 'openid offline_access');
      assert(t.claims()?.aud === meta.client_id && t.refresh_token, JSON.stringify(t));
      const auth = { authorization: `Bearer ${meta.registration_access_token}` };
      const read = await fetch(meta.registration_client_uri, { headers: auth });
      const info = await read.json();
      assert(read.status === 200 && info.client_name === 'Registered by openid-client' && !('client_secret' in info), JSON.stringify(info));
      const gone = await fetch(meta.registration_client_uri, { method: 'DELETE', headers: auth });
      assert(gone.status === 204, `DELETE answered ${gone.status}`);
      // The deleted client cannot authenticate: 401 with a Basic challenge, and Candor names why.
      const after = await client.refreshTokenGrant(reg, t.refresh_token).then(() => null, (e) => e);
      const body = await after?.response?.json().catch(() => null);
      assert(after?.status === 401 && body?.error === 'invalid_client' && body?.reason === 'client_unknown_at_token',
        `a deleted client's refresh: ${after?.message ?? 'success'} ${JSON.stringify(body)}`);
    }],
    ['client_secret_jwt (RFC 7523): a client the library registers signs HS256 assertions with its secret, at /token and /introspect', async () => {
      const reg = await client.dynamicClientRegistration(new URL(candor.issuer), {
        client_name: 'HMAC client', grant_types: ['client_credentials'], response_types: [],
        token_endpoint_auth_method: 'client_secret_jwt', scope: 'openid',
      }, client.ClientSecretJwt(), { execute: [client.allowInsecureRequests] });
      const cc = await client.clientCredentialsGrant(reg);
      assert(cc.access_token, JSON.stringify(cc));
      const r = await client.tokenIntrospection(reg, cc.access_token);
      assert(r.active === true && r.client_id === reg.clientMetadata().client_id, JSON.stringify(r));
      // A wrong secret is refused, and Candor names the defect.
      const wrong = new client.Configuration(reg.serverMetadata(), reg.clientMetadata().client_id, {}, client.ClientSecretJwt('cds_not-the-secret'));
      client.allowInsecureRequests(wrong);
      const e = await client.clientCredentialsGrant(wrong).then(() => null, (err) => err);
      const body = await e?.response?.json().catch(() => null);
      assert(e?.status === 401 && body?.reason === 'client_assertion_signature_invalid', `wrong secret: ${e?.message ?? 'success'} ${JSON.stringify(body)}`);
    }],
    ['a replayed code is refused with invalid_grant (code_already_redeemed)', async () => {
      const reply = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: callback.searchParams.get('state'), idTokenExpected: true })
        .then(() => null, (e) => e);
      assert(reply?.error === 'invalid_grant', `expected invalid_grant, got ${reply?.error ?? 'success'}`);
      assert(reply.cause?.reason === 'code_already_redeemed', `reason ${reply.cause?.reason}`);
    }],
    ['a wrong verifier is refused with invalid_grant (pkce_verifier_mismatch)', async () => {
      const { state, nonce } = await authorize();
      const reply = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: state, expectedNonce: nonce })
        .then(() => null, (e) => e);
      assert(reply?.error === 'invalid_grant', `expected invalid_grant, got ${reply?.error ?? 'success'}`);
      assert(reply.cause?.reason === 'pkce_verifier_mismatch', `reason ${reply.cause?.reason}`);
    }],
  ]);
} finally {
  candor.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(code);

// foreign-issuer.mjs: an OpenID Connect issuer that is not tokencart, for
// the test that catalogsvc accepts tokens of a second, trusted issuer.
//
// Usage: node foreign-issuer.mjs --cert tls.crt --key tls.key
//
// It generates its signing keys with jose (ES256, and RS256 of 2048 bits),
// serves its discovery document and JWKS over HTTPS on 127.0.0.1 (a random
// port), and prints one JSON line: {"issuer": "https://127.0.0.1:PORT"}.
// Then it reads one JSON request a line on stdin and prints one JSON line
// for each, {"token": "..."} or {"error": "..."}:
//
//   {"kind": "ES256" | "RS256", "claims": {...}}   a token minted by jose
//   {"kind": "none", "claims": {...}}              an unsecured JWT (jose)
//   {"kind": "HS256-public-key", "claims": {...}}  HS256 keyed by the RSA
//                                                  public key (a confusion attack)
//   {"kind": "RS256-1024", "claims": {...}}        RS256 with a 1024-bit key
//                                                  that the JWKS publishes
//
// Claims default to iss (this issuer), iat (now) and exp (in 5 minutes).
// It exits when stdin closes.
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import * as jose from 'jose';

const { values: args } = parseArgs({ options: { cert: { type: 'string' }, key: { type: 'string' } } });
if (!args.cert || !args.key) {
  console.error('usage: node foreign-issuer.mjs --cert tls.crt --key tls.key');
  process.exit(2);
}

const es = await jose.generateKeyPair('ES256', { extractable: true });
const rs = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
// jose refuses to sign with RSA under 2048 bits, rightly: this key is made
// and used with node:crypto, only to show that catalogsvc refuses it too.
const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });

const publicJWK = async (key, kid, alg) => ({ ...(await jose.exportJWK(key)), kid, alg, use: 'sig' });
const jwks = JSON.stringify({
  keys: [
    await publicJWK(es.publicKey, 'es', 'ES256'),
    await publicJWK(rs.publicKey, 'rs', 'RS256'),
    await publicJWK(weak.publicKey, 'rs1024', 'RS256'),
  ],
});

const server = createServer({ cert: readFileSync(args.cert), key: readFileSync(args.key) }, (req, res) => {
  const json = (body) => {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
    res.end(body);
  };
  if (req.method === 'GET' && req.url === '/.well-known/openid-configuration') {
    json(JSON.stringify({
      issuer,
      jwks_uri: `${issuer}/jwks.json`,
      id_token_signing_alg_values_supported: ['ES256', 'RS256'],
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
    }));
  } else if (req.method === 'GET' && req.url === '/jwks.json') {
    json(jwks);
  } else {
    res.writeHead(404).end();
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `https://127.0.0.1:${server.address().port}`;

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

async function mint({ kind, claims = {} }) {
  const now = Math.floor(Date.now() / 1000);
  const payload = { iss: issuer, iat: now, exp: now + 300, ...claims };
  switch (kind) {
    case 'ES256':
    case 'RS256':
      return new jose.SignJWT(payload)
        .setProtectedHeader({ alg: kind, kid: kind === 'ES256' ? 'es' : 'rs', typ: 'at+jwt' })
        .sign(kind === 'ES256' ? es.privateKey : rs.privateKey);
    case 'none':
      return new jose.UnsecuredJWT(payload).encode();
    case 'HS256-public-key': {
      const pem = await jose.exportSPKI(rs.publicKey);
      return new jose.SignJWT(payload)
        .setProtectedHeader({ alg: 'HS256', kid: 'rs', typ: 'at+jwt' })
        .sign(new TextEncoder().encode(pem));
    }
    case 'RS256-1024': {
      const input = `${b64url({ alg: 'RS256', kid: 'rs1024', typ: 'at+jwt' })}.${b64url(payload)}`;
      return `${input}.${nodeSign('sha256', Buffer.from(input), weak.privateKey).toString('base64url')}`;
    }
    default:
      throw new Error(`unknown kind ${JSON.stringify(kind)}`);
  }
}

console.log(JSON.stringify({ issuer }));
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  try {
    console.log(JSON.stringify({ token: await mint(JSON.parse(line)) }));
  } catch (err) {
    console.log(JSON.stringify({ error: String(err?.message ?? err) }));
  }
}
server.close();
server.closeAllConnections();

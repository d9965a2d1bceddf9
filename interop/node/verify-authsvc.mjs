// verify-authsvc.mjs: an independent check of authsvc's access tokens with
// the jose package, as a Node.js service would make it. It discovers
// authsvc from its issuer URL alone (OpenID Connect discovery, then the
// jwks_uri it names), and verifies the token read from stdin as an RFC 9068
// access token: EdDSA only, typ at+jwt, exact issuer, the audience, and the
// claims RFC 9068 requires.
//
//   node verify-authsvc.mjs <issuer> <audience> < token
//
// It prints one JSON line: {"ok":true,"header":{...},"claims":{...}} and
// exits 0 when the token verifies; {"ok":false,"code":"ERR_..."} (jose's
// error code) and exits 1 when jose refuses it; exits 2 on a usage or
// discovery failure.
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [issuer, audience] = process.argv.slice(2);

function fail(code, message) {
  process.stdout.write(JSON.stringify({ ok: false, code, message }) + '\n');
  process.exit(code === 'USAGE' || code === 'DISCOVERY' ? 2 : 1);
}

if (!issuer || !audience) {
  fail('USAGE', 'usage: node verify-authsvc.mjs <issuer> <audience> < token');
}

let raw = '';
for await (const chunk of process.stdin) {
  raw += chunk;
}
const token = raw.trim();

// OpenID Connect Discovery 1.0, section 4: the document is at the issuer
// plus /.well-known/openid-configuration, and its issuer must be exactly
// the one we asked for.
let metadata;
try {
  const res = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) {
    fail('DISCOVERY', `discovery document: HTTP ${res.status}`);
  }
  metadata = await res.json();
} catch (err) {
  fail('DISCOVERY', `discovery document: ${err.message}`);
}
if (metadata.issuer !== issuer) {
  fail('DISCOVERY', `discovery document names issuer ${metadata.issuer}, want ${issuer}`);
}
if (typeof metadata.jwks_uri !== 'string') {
  fail('DISCOVERY', 'discovery document has no jwks_uri');
}

const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri), { timeoutDuration: 5000 });
try {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    typ: 'at+jwt',
    algorithms: ['EdDSA'],
    requiredClaims: ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti'],
  });
  process.stdout.write(JSON.stringify({ ok: true, header: protectedHeader, claims: payload }) + '\n');
} catch (err) {
  fail(err.code ?? 'UNKNOWN', err.message);
}

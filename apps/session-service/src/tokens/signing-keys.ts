import { Logger, type LoggerService } from '@nestjs/common';
import {
  calculateJwkThumbprint,
  CompactSign,
  compactVerify,
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
} from 'jose';
import { readFile } from 'node:fs/promises';
import { ACCESS_TOKEN_KEY_TYPES, type AccessTokenAlgorithm } from '@app/contracts';

/** The algorithms of the access-token profile: the only ones this service signs with. */
export type SigningAlgorithm = AccessTokenAlgorithm;

/** A key as published in the JWKS: public members only. */
export interface PublicJwk {
  kty: 'OKP' | 'EC';
  crv: 'Ed25519' | 'P-256';
  x: string;
  y?: string;
  kid: string;
  alg: SigningAlgorithm;
  use: 'sig';
}

export interface ActiveSigningKey {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: CryptoKey;
}

export interface VerificationKey {
  alg: SigningAlgorithm;
  publicKey: CryptoKey;
}

/**
 * Thrown at start-up when the signing keys are missing or unusable. Its messages name the
 * variable, the key's position and `kid`, never key material.
 */
export class SigningKeysError extends Error {
  override readonly name = 'SigningKeysError';
}

/** The key kinds accepted, and the algorithm each signs with (the access-token profile's). */
const KINDS = ACCESS_TOKEN_KEY_TYPES;

const SELF_TEST = new TextEncoder().encode('signing-key self-test');

/** The service's keys: the first one signs, all of them verify and are published. */
export class SigningKeys {
  private constructor(
    readonly active: ActiveSigningKey,
    private readonly published: readonly PublicJwk[],
    private readonly verification: ReadonlyMap<string, VerificationKey>,
  ) {}

  /**
   * Validates and imports private JWKs (parsed JSON); `source` names where they came from in
   * error messages. Each key must have a `kid` (unique), be Ed25519 or P-256, carry its private
   * part, and its public part must belong to it (checked by signing and verifying once).
   */
  static async fromJwks(jwks: unknown, source = 'SIGNING_KEYS'): Promise<SigningKeys> {
    if (!Array.isArray(jwks) || jwks.length === 0)
      throw new SigningKeysError(`${source} must be a JSON array of at least one private JWK`);
    const imported: { kid: string; alg: SigningAlgorithm; privateKey: CryptoKey }[] = [];
    const published: PublicJwk[] = [];
    const verification = new Map<string, VerificationKey>();
    for (const [index, raw] of (jwks as unknown[]).entries()) {
      const { jwk, alg } = checkJwk(raw, `${source}[${index}]`);
      if (verification.has(jwk.kid))
        throw new SigningKeysError(`${source}[${index}]: kid "${jwk.kid}" is listed twice`);
      const where = `${source}[${index}] (kid "${jwk.kid}")`;
      const { privateKey, publicKey } = await importPair(jwk, alg, where);
      imported.push({ kid: jwk.kid, alg, privateKey });
      published.push(jwk.publicJwk);
      verification.set(jwk.kid, { alg, publicKey });
    }
    const [active] = imported;
    if (!active) throw new SigningKeysError(`${source} has no key`);
    return new SigningKeys(active, published, verification);
  }

  /** A fresh Ed25519 key named by its RFC 7638 thumbprint; gone when the process ends. */
  static async generate(): Promise<SigningKeys> {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const jwk = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x });
    return SigningKeys.fromJwks([{ ...jwk, kid, alg: 'EdDSA' }], 'generated key');
  }

  /** The JWKS to publish: a copy, so callers cannot alter the keys this service trusts. */
  jwks(): { keys: PublicJwk[] } {
    return { keys: this.published.map((key) => ({ ...key })) };
  }

  /** Algorithms of the published keys, each once, the signing key's first. */
  algorithms(): SigningAlgorithm[] {
    return [...new Set(this.published.map((key) => key.alg))];
  }

  verificationKey(kid: string): VerificationKey | undefined {
    return this.verification.get(kid);
  }
}

export interface SigningKeysEnv {
  NODE_ENV: string;
  SIGNING_KEYS?: string | undefined;
  SIGNING_KEYS_FILE?: string | undefined;
}

/**
 * The keys from SIGNING_KEYS or the file SIGNING_KEYS_FILE names. With neither outside
 * production, a key generated now (with a warning); in production, an error.
 */
export async function loadSigningKeys(
  env: SigningKeysEnv,
  logger: Pick<LoggerService, 'warn'> = new Logger('SigningKeys'),
): Promise<SigningKeys> {
  // Blank counts as unset: `SIGNING_KEYS=` is how compose files and shells often leave it.
  const inline = env.SIGNING_KEYS?.trim() ? env.SIGNING_KEYS : undefined;
  const file = env.SIGNING_KEYS_FILE?.trim() ? env.SIGNING_KEYS_FILE.trim() : undefined;
  if (inline !== undefined && file !== undefined)
    throw new SigningKeysError('set SIGNING_KEYS or SIGNING_KEYS_FILE, not both');
  if (inline !== undefined) return SigningKeys.fromJwks(parseJson(inline, 'SIGNING_KEYS'));
  if (file !== undefined) {
    const text = await readFile(file, 'utf8').catch((error: unknown) => {
      const code = (error as NodeJS.ErrnoException).code ?? 'read error';
      throw new SigningKeysError(`SIGNING_KEYS_FILE: cannot read ${file} (${code})`);
    });
    return SigningKeys.fromJwks(parseJson(text, 'SIGNING_KEYS_FILE'), 'SIGNING_KEYS_FILE');
  }
  if (env.NODE_ENV === 'production')
    throw new SigningKeysError(
      'no access-token signing keys: set SIGNING_KEYS (a JSON array of private JWKs, the first ' +
        'one signs) or SIGNING_KEYS_FILE (the path of a file holding it); production never ' +
        'generates a key of its own',
    );
  const keys = await SigningKeys.generate();
  logger.warn(
    `no SIGNING_KEYS or SIGNING_KEYS_FILE: signing with a key generated at start (kid ` +
      `${keys.active.kid}); its tokens will not verify after a restart or on another instance`,
  );
  return keys;
}

function parseJson(text: string, variable: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // Not the parser's message: it quotes the text around the error, i.e. key material.
    throw new SigningKeysError(`${variable} is not valid JSON`);
  }
}

interface CheckedJwk {
  kid: string;
  privateJwk: JWK & { kty: 'OKP' | 'EC' };
  publicJwk: PublicJwk;
}

/** Checks the members of one key; builds its private and its public-only JWK. */
function checkJwk(raw: unknown, where: string): { jwk: CheckedJwk; alg: SigningAlgorithm } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new SigningKeysError(`${where} is not a JSON object`);
  const member = (name: string): unknown => (raw as Record<string, unknown>)[name];
  const kid = member('kid');
  if (typeof kid !== 'string' || kid.trim() === '')
    throw new SigningKeysError(`${where} needs a "kid"`);
  const named = `${where} (kid "${kid}")`;
  const kind = KINDS.find((k) => k.kty === member('kty') && k.crv === member('crv'));
  if (!kind)
    throw new SigningKeysError(
      `${named}: only Ed25519 (kty OKP) and P-256 (kty EC) keys are accepted`,
    );
  const alg = member('alg');
  if (alg !== undefined && alg !== kind.alg)
    throw new SigningKeysError(`${named}: a ${kind.crv} key signs with alg ${kind.alg}`);
  const use = member('use');
  if (use !== undefined && use !== 'sig')
    throw new SigningKeysError(`${named}: "use" must be "sig"`);
  const base64url = (name: string): string => {
    const value = member(name);
    if (typeof value !== 'string' || !/^[A-Za-z0-9_-]+$/.test(value))
      throw new SigningKeysError(
        name === 'd'
          ? `${named}: the private part "d" is missing (a public key cannot sign)`
          : `${named}: "${name}" is missing or not base64url`,
      );
    return value;
  };
  const d = base64url('d');
  const x = base64url('x');
  const y = kind.kty === 'EC' ? base64url('y') : undefined;
  const publicJwk: PublicJwk = {
    kty: kind.kty,
    crv: kind.crv,
    x,
    ...(y === undefined ? {} : { y }),
    kid,
    alg: kind.alg,
    use: 'sig',
  };
  // Rebuilt from the checked members only: `ext`, `key_ops` and the like are not carried over.
  const privateJwk: CheckedJwk['privateJwk'] = {
    kty: kind.kty,
    crv: kind.crv,
    x,
    ...(y && { y }),
    d,
  };
  return { jwk: { kid, privateJwk, publicJwk }, alg: kind.alg };
}

async function importPair(jwk: CheckedJwk, alg: SigningAlgorithm, where: string) {
  const { kty, crv, x, y } = jwk.publicJwk;
  let publicKey: CryptoKey;
  let privateKey: CryptoKey;
  try {
    publicKey = await importJWK({ kty, crv, x, ...(y && { y }) }, alg);
  } catch {
    throw new SigningKeysError(`${where}: its public part is not a valid ${crv} key`);
  }
  try {
    privateKey = await importJWK(jwk.privateJwk, alg);
  } catch {
    // Node's Web Crypto refuses a private part whose stated public part belongs to another key.
    throw new SigningKeysError(`${where}: its public part ("x"/"y") does not match its "d"`);
  }
  // The same check where a runtime does not make it: a private part paired with someone
  // else's public part would sign tokens no one can verify.
  try {
    const jws = await new CompactSign(SELF_TEST).setProtectedHeader({ alg }).sign(privateKey);
    await compactVerify(jws, publicKey, { algorithms: [alg] });
  } catch {
    throw new SigningKeysError(`${where}: its public part ("x"/"y") does not match its "d"`);
  }
  return { privateKey, publicKey };
}

import { SET_TYP } from '@app/contracts';
import type { RedisClient } from '@app/redis';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import type { SigningJwk } from './config';

function algorithmOf({ kty, crv }: SigningJwk): 'ES256' | 'EdDSA' {
  if (kty === 'EC' && crv === 'P-256') return 'ES256';
  if (kty === 'OKP' && crv === 'Ed25519') return 'EdDSA';
  throw new Error('SSF_SIGNING_KEY: an EC P-256 or an OKP Ed25519 key only');
}

const base64url = (text: string) => Buffer.from(text).toString('base64url');

/**
 * The transmitter's one signing key: signs SETs, and is published (public part) at jwks_uri.
 * Signing is node:crypto's, synchronous: one SET per receiver per revocation makes it the
 * transmitter's hottest path, and WebCrypto's asynchronous jobs (jose's `sign`) cost a thread
 * hop each. The JWS is the compact form RFC 7515 defines; receivers verify it with any JOSE
 * library (the tests use jose's).
 */
export class SigningKey {
  private readonly header: string;

  private constructor(
    private readonly key: KeyObject,
    readonly alg: 'ES256' | 'EdDSA',
    readonly kid: string,
    readonly publicJwk: JWK,
  ) {
    this.header = base64url(JSON.stringify({ alg, kid, typ: SET_TYP }));
  }

  static async fromJwk(jwk: SigningJwk): Promise<SigningKey> {
    const alg = algorithmOf(jwk);
    const { kty, crv, x, y } = jwk;
    const publicPart: JWK = { kty, crv, x, ...(y !== undefined && { y }) };
    const kid = jwk.kid ?? (await calculateJwkThumbprint(publicPart));
    const key = createPrivateKey({ key: { kty, crv, x, y, d: jwk.d }, format: 'jwk' });
    return new SigningKey(key, alg, kid, { ...publicPart, kid, alg, use: 'sig' });
  }

  /**
   * Development only: the key kept at `redisKey`, made now if there is none yet (SET NX, so
   * two transmitters starting together agree on one), so that restarts keep it.
   */
  static async fromRedis(redis: RedisClient, redisKey: string): Promise<SigningKey> {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const fresh = { ...(await exportJWK(privateKey)) };
    await redis.set(redisKey, JSON.stringify(fresh), 'NX');
    const kept = await redis.get(redisKey);
    if (kept === null) throw new Error(`signing key at ${redisKey} vanished`);
    return SigningKey.fromJwk(JSON.parse(kept) as SigningJwk);
  }

  /** The JWS compact form of `claims`, typed `secevent+jwt`. */
  sign(claims: object): string {
    const input = `${this.header}.${base64url(JSON.stringify(claims))}`;
    const signature =
      this.alg === 'ES256'
        ? sign('sha256', Buffer.from(input), { key: this.key, dsaEncoding: 'ieee-p1363' })
        : sign(null, Buffer.from(input), this.key);
    return `${input}.${signature.toString('base64url')}`;
  }
}

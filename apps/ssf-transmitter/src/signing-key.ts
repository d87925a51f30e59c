import { SET_TYP } from '@app/contracts';
import type { Redis } from 'ioredis';
import {
  calculateJwkThumbprint,
  CompactSign,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
} from 'jose';
import type { SigningJwk } from './config';

const encoder = new TextEncoder();
type PrivateKey = Awaited<ReturnType<typeof importJWK>>;

function algorithmOf({ kty, crv }: SigningJwk): 'ES256' | 'EdDSA' {
  if (kty === 'EC' && crv === 'P-256') return 'ES256';
  if (kty === 'OKP' && crv === 'Ed25519') return 'EdDSA';
  throw new Error('SSF_SIGNING_KEY: an EC P-256 or an OKP Ed25519 key only');
}

/** The transmitter's one signing key: signs SETs, and is published (public part) at jwks_uri. */
export class SigningKey {
  private constructor(
    private readonly key: PrivateKey,
    readonly alg: 'ES256' | 'EdDSA',
    readonly kid: string,
    readonly publicJwk: JWK,
  ) {}

  static async fromJwk(jwk: SigningJwk): Promise<SigningKey> {
    const alg = algorithmOf(jwk);
    const { kty, crv, x, y } = jwk;
    const publicPart: JWK = { kty, crv, x, ...(y !== undefined && { y }) };
    const kid = jwk.kid ?? (await calculateJwkThumbprint(publicPart));
    const key = await importJWK({ ...jwk, alg }, alg);
    return new SigningKey(key, alg, kid, { ...publicPart, kid, alg, use: 'sig' });
  }

  /**
   * Development only: the key kept at `redisKey`, made now if there is none yet (SET NX, so
   * two transmitters starting together agree on one), so that restarts keep it.
   */
  static async fromRedis(redis: Redis, redisKey: string): Promise<SigningKey> {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const fresh = { ...(await exportJWK(privateKey)) };
    await redis.set(redisKey, JSON.stringify(fresh), 'NX');
    const kept = await redis.get(redisKey);
    if (kept === null) throw new Error(`signing key at ${redisKey} vanished`);
    return SigningKey.fromJwk(JSON.parse(kept) as SigningJwk);
  }

  /** The JWS compact form of `claims`, typed `secevent+jwt`. */
  async sign(claims: object): Promise<string> {
    return new CompactSign(encoder.encode(JSON.stringify(claims)))
      .setProtectedHeader({ alg: this.alg, kid: this.kid, typ: SET_TYP })
      .sign(this.key);
  }
}

import { Injectable } from '@nestjs/common';
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** OWASP's scrypt recommendation: 128 MiB of memory per hash (128 · N · r bytes). */
export const SCRYPT_PARAMS: Readonly<ScryptParams> = { N: 2 ** 17, r: 8, p: 1 };

const SALT_BYTES = 16;
const KEY_BYTES = 32;
/**
 * Stored hashes are configuration, but a hash with absurd parameters must not be able to
 * take the process's memory: older, weaker sets parse, nothing above 256 MiB does.
 */
const MAX_MEMORY_BYTES = 256 * 1024 * 1024;

const FORMAT =
  /^scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

export interface ParsedHash extends ScryptParams {
  salt: Buffer;
  hash: Buffer;
}

/** Reads `scrypt$N$r$p$saltB64$hashB64`; `undefined` when malformed or out of bounds. */
export function parsePasswordHash(encoded: string): ParsedHash | undefined {
  const match = FORMAT.exec(encoded);
  if (!match) return undefined;
  const [N, r, p] = [match[1], match[2], match[3]].map(Number) as [number, number, number];
  const salt = Buffer.from(match[4] ?? '', 'base64');
  const hash = Buffer.from(match[5] ?? '', 'base64');
  const powerOfTwo = N >= 2 && (N & (N - 1)) === 0;
  if (!powerOfTwo || r < 1 || p < 1 || p > 16 || 128 * N * r > MAX_MEMORY_BYTES) return undefined;
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) return undefined;
  return { N, r, p, salt, hash };
}

function derive(password: string, salt: Buffer, keyLength: number, params: ScryptParams) {
  // scrypt needs 128 · N · r bytes; Node's default cap (32 MiB) is below OWASP's parameters.
  const options: ScryptOptions = { ...params, maxmem: 2 * 128 * params.N * params.r };
  // The async form runs on libuv's thread pool: a sign-in never blocks the event loop.
  return new Promise<Buffer>((resolve, reject) => {
    scrypt(password, salt, keyLength, options, (error, key) => {
      if (error) reject(error);
      else resolve(key);
    });
  });
}

function encode(params: ScryptParams, salt: Buffer, hash: Buffer): string {
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Password hashes as self-describing strings, so parameters can be raised without a migration. */
@Injectable()
export class PasswordHasher {
  /**
   * Verified against when the username is unknown, so an unknown name costs the same scrypt
   * as a wrong password. Random bytes in the current format: no password matches it.
   */
  readonly unknownUserHash = encode(SCRYPT_PARAMS, randomBytes(SALT_BYTES), randomBytes(KEY_BYTES));

  async hash(password: string, params: ScryptParams = SCRYPT_PARAMS): Promise<string> {
    const salt = randomBytes(SALT_BYTES);
    return encode(params, salt, await derive(password, salt, KEY_BYTES, params));
  }

  async verify(password: string, encoded: string): Promise<boolean> {
    const parsed = parsePasswordHash(encoded);
    if (!parsed) return false;
    const candidate = await derive(password, parsed.salt, parsed.hash.length, parsed);
    return timingSafeEqual(candidate, parsed.hash);
  }
}

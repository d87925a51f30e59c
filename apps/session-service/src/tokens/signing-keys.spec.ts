import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSigningKeys, SigningKeys, SigningKeysError } from './signing-keys';

// Where the keys come from and what is refused at start; messages name the variable and the
// key, never the key material.

async function newKey(alg: 'EdDSA' | 'ES256', kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'EdDSA' && { crv: 'Ed25519' }),
  });
  return { ...(await exportJWK(privateKey)), kid };
}

const quiet = { warn: jest.fn() };

async function refusal(keys: unknown): Promise<SigningKeysError> {
  const error = await loadSigningKeys({
    NODE_ENV: 'production',
    SIGNING_KEYS: JSON.stringify(keys),
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SigningKeysError);
  return error as SigningKeysError;
}

describe('loadSigningKeys', () => {
  let ed: JWK;
  let ec: JWK;
  beforeAll(async () => {
    ed = await newKey('EdDSA', 'ed-1');
    ec = await newKey('ES256', 'ec-1');
  });

  it('signs with the first key and publishes all of them, public members only', async () => {
    const keys = await loadSigningKeys({
      NODE_ENV: 'production',
      SIGNING_KEYS: JSON.stringify([ed, ec]),
    });

    expect(keys.active).toMatchObject({ kid: 'ed-1', alg: 'EdDSA' });
    expect(keys.jwks()).toEqual({
      keys: [
        { kty: 'OKP', crv: 'Ed25519', x: ed.x, kid: 'ed-1', alg: 'EdDSA', use: 'sig' },
        { kty: 'EC', crv: 'P-256', x: ec.x, y: ec.y, kid: 'ec-1', alg: 'ES256', use: 'sig' },
      ],
    });
    expect(JSON.stringify(keys.jwks())).not.toContain('"d"');
    expect(keys.algorithms()).toEqual(['EdDSA', 'ES256']);
  });

  it('reads the keys from SIGNING_KEYS_FILE', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'signing-keys-'));
    try {
      const file = join(dir, 'keys.json');
      await writeFile(file, JSON.stringify([ec]));
      const keys = await loadSigningKeys({ NODE_ENV: 'production', SIGNING_KEYS_FILE: file });
      expect(keys.active.kid).toBe('ec-1');
      await expect(
        loadSigningKeys({ NODE_ENV: 'production', SIGNING_KEYS_FILE: join(dir, 'missing') }),
      ).rejects.toThrow(/SIGNING_KEYS_FILE: cannot read .*missing \(ENOENT\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start in production without keys, naming both variables', async () => {
    for (const env of [{}, { SIGNING_KEYS: '', SIGNING_KEYS_FILE: ' ' }]) {
      const started = loadSigningKeys({ NODE_ENV: 'production', ...env }, quiet);
      await expect(started).rejects.toThrow(SigningKeysError);
      await expect(started).rejects.toThrow(/SIGNING_KEYS .*SIGNING_KEYS_FILE/);
    }
  });

  it('outside production, generates a key and warns that its tokens will not survive', async () => {
    const logger = { warn: jest.fn() };
    const keys = await loadSigningKeys({ NODE_ENV: 'development' }, logger);

    expect(keys.active.alg).toBe('EdDSA');
    expect(keys.jwks().keys).toEqual([expect.objectContaining({ kid: keys.active.kid })]);
    expect(logger.warn).toHaveBeenCalledWith(expect.stringContaining('after a restart'));
  });

  it('refuses both variables at once', async () => {
    await expect(
      loadSigningKeys({
        NODE_ENV: 'development',
        SIGNING_KEYS: JSON.stringify([ed]),
        SIGNING_KEYS_FILE: '/keys.json',
      }),
    ).rejects.toThrow('set SIGNING_KEYS or SIGNING_KEYS_FILE, not both');
  });

  it('says the JSON is bad without quoting it', async () => {
    const text = JSON.stringify([ed]).slice(0, -5);
    const error = await loadSigningKeys({ NODE_ENV: 'production', SIGNING_KEYS: text }).catch(
      (e: unknown) => e as Error,
    );
    expect(error).toBeInstanceOf(SigningKeysError);
    expect((error as Error).message).toBe('SIGNING_KEYS is not valid JSON');
  });

  it.each([
    ['not a list', () => ({ keys: [ed] }), /SIGNING_KEYS must be a JSON array/],
    ['an empty list', () => [], /SIGNING_KEYS must be a JSON array of at least one/],
    ['a key without kid', () => [{ ...ed, kid: undefined }], /SIGNING_KEYS\[0\] needs a "kid"/],
    ['a public key', () => [ed, { ...ec, d: undefined }], /\[1\] \(kid "ec-1"\).*"d" is missing/],
    ['a duplicate kid', () => [ed, { ...ec, kid: 'ed-1' }], /kid "ed-1" is listed twice/],
    ['an RSA key', () => [{ kty: 'RSA', kid: 'r', n: 'AQAB', e: 'AQAB', d: 'AQAB' }], /only/],
    ['another curve', () => [{ ...ec, crv: 'P-384' }], /only Ed25519 .* and P-256/],
    ['a wrong alg', () => [{ ...ed, alg: 'ES256' }], /Ed25519 key signs with alg EdDSA/],
    ['an encryption key', () => [{ ...ed, use: 'enc' }], /"use" must be "sig"/],
    ['an EC key without y', () => [{ ...ec, y: undefined }], /"y" is missing/],
  ])('refuses %s', async (_case, keys, message) => {
    const error = await refusal(keys());
    expect(error.message).toMatch(message);
  });

  it("refuses a key whose public part is another key's, without showing either", async () => {
    const otherEd = await newKey('EdDSA', 'other');
    const otherEc = await newKey('ES256', 'other');
    for (const key of [
      { ...ed, x: otherEd.x },
      { ...ec, x: otherEc.x, y: otherEc.y },
    ]) {
      const error = await refusal([key]);
      expect(error.message).toBe(
        `SIGNING_KEYS[0] (kid "${String(key.kid)}"): its public part ("x"/"y") does not match its "d"`,
      );
    }
  });

  it('refuses a key that is not a valid point', async () => {
    const error = await refusal([{ ...ec, x: 'AAAA', y: 'AAAA' }]);
    expect(error.message).toMatch(/\(kid "ec-1"\): its public part is not a valid P-256 key/);
  });

  it('names a generated key by its RFC 7638 thumbprint', async () => {
    const keys = await SigningKeys.generate();
    expect(keys.active.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

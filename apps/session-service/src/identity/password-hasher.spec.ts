import { parsePasswordHash, PasswordHasher, SCRYPT_PARAMS } from './password-hasher';

// Full-strength hashing (~0.1–0.3 s each) where the parameters are what is tested; cheaper
// parameters where only the round trip is.
const FAST = { N: 2 ** 10, r: 8, p: 1 };

describe('PasswordHasher', () => {
  const hasher = new PasswordHasher();

  it('hashes with the OWASP parameters into a self-describing string, and verifies it', async () => {
    const encoded = await hasher.hash('correct horse');
    expect(encoded).toMatch(/^scrypt\$131072\$8\$1\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$/);
    const parsed = parsePasswordHash(encoded)!;
    expect(parsed).toMatchObject(SCRYPT_PARAMS);
    expect(parsed.salt).toHaveLength(16);
    expect(parsed.hash).toHaveLength(32);
    await expect(hasher.verify('correct horse', encoded)).resolves.toBe(true);
  });

  it('refuses a wrong password', async () => {
    const encoded = await hasher.hash('correct horse', FAST);
    await expect(hasher.verify('correct horse ', encoded)).resolves.toBe(false);
    await expect(hasher.verify('', encoded)).resolves.toBe(false);
  });

  it('salts every hash', async () => {
    const [a, b] = await Promise.all([hasher.hash('same', FAST), hasher.hash('same', FAST)]);
    expect(a).not.toEqual(b);
  });

  it('verifies hashes made with older parameters, read from the string', async () => {
    const older = await hasher.hash('legacy', { N: 2 ** 14, r: 8, p: 2 });
    expect(older.startsWith('scrypt$16384$8$2$')).toBe(true);
    await expect(hasher.verify('legacy', older)).resolves.toBe(true);
    await expect(hasher.verify('legacy!', older)).resolves.toBe(false);
  });

  it('refuses malformed hashes and parameters that would take too much memory', async () => {
    await expect(hasher.verify('x', 'not-a-hash')).resolves.toBe(false);
    const salt = Buffer.alloc(16).toString('base64');
    const hash = Buffer.alloc(32).toString('base64');
    expect(parsePasswordHash(`scrypt$16384$8$1$${salt}$${hash}`)).toBeDefined();
    expect(parsePasswordHash(`scrypt$16383$8$1$${salt}$${hash}`)).toBeUndefined(); // not 2^k
    expect(parsePasswordHash(`scrypt$${2 ** 22}$8$1$${salt}$${hash}`)).toBeUndefined(); // 4 GiB
    expect(parsePasswordHash(`bcrypt$16384$8$1$${salt}$${hash}`)).toBeUndefined();
  });

  it('has an unknown-user hash in the current format that no password matches', async () => {
    expect(parsePasswordHash(hasher.unknownUserHash)).toMatchObject(SCRYPT_PARAMS);
    await expect(hasher.verify('', hasher.unknownUserHash)).resolves.toBe(false);
  });
});

// Tests that talk to a real broker or start processes bound their own waits (see
// `eventually`); this is only the outer ceiling per test and hook.
jest.setTimeout(300_000);

// A browser as a device of the user, named from its User-Agent the way the console shows it:
// used by the gateway (a sign-in through the provider) and by the console's own sign-in form
// (bundled for browsers from here). No Node or DOM dependency.

/** This browser as a device, from its User-Agent: "Chrome on Linux" (as the console names it). */
export function deviceOf(userAgent: string | undefined): { name: string; platform: string } {
  const ua = userAgent ?? '';
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /Firefox\//.test(ua)
      ? 'Firefox'
      : /Chrom(e|ium)\//.test(ua)
        ? 'Chrome'
        : /Safari\//.test(ua)
          ? 'Safari'
          : 'Browser';
  const platform = /Android/.test(ua)
    ? 'Android'
    : /iPhone|iPad/.test(ua)
      ? 'iOS'
      : /Mac OS X/.test(ua)
        ? 'macOS'
        : /Windows/.test(ua)
          ? 'Windows'
          : /Linux/.test(ua)
            ? 'Linux'
            : 'web';
  return { name: `${browser} on ${platform}`, platform };
}

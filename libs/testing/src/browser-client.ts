/**
 * An HTTP client that behaves like a browser where the tests need it to: one cookie jar for
 * every site (cookies keyed by host, not port, and scoped by path, as browsers do), redirects
 * followed one hop at a time (a POST answered 302/303 becomes a GET), `<meta http-equiv=refresh>`
 * followed like a navigation, and HTML forms read and submitted. It drives OpenID Connect code
 * flows through the gateway and the dev provider without a browser; the web console's tests use
 * a real Chromium.
 */

interface StoredCookie {
  value: string;
  path: string;
  /** Epoch ms, or undefined for a session cookie. */
  expiresAt: number | undefined;
}

export interface Form {
  /** Absolute URL the form submits to. */
  action: string;
  method: 'get' | 'post';
  /** Every named input, select and button value, as the page gives them. */
  fields: Record<string, string>;
  /** Names of password inputs. */
  passwordFields: string[];
  /** Names of text or email inputs (the user name goes into the first one). */
  textFields: string[];
}

export interface Page {
  /** The final URL, after every redirect. */
  url: string;
  status: number;
  headers: Headers;
  text: string;
  /** Every URL visited, in order, the final one last. */
  visited: string[];
}

const MAX_HOPS = 20;

export class BrowserClient {
  private readonly jar = new Map<string, Map<string, StoredCookie>>();

  constructor(private readonly userAgent = 'Mozilla/5.0 (X11; Linux x86_64) test-browser') {}

  /** The value of cookie `name` for `host` (a host name, no port), if live. */
  cookie(host: string, name: string): string | undefined {
    const stored = this.jar.get(host)?.get(name);
    return stored && !this.expired(stored) ? stored.value : undefined;
  }

  /** Drops every cookie of `host` (a host name, no port). */
  clearCookies(host: string): void {
    this.jar.delete(host);
  }

  /** One request, no redirect followed; cookies sent and stored. */
  async request(
    url: string,
    {
      method = 'GET',
      headers = {},
      body,
    }: { method?: string; headers?: Record<string, string>; body?: string | URLSearchParams } = {},
  ): Promise<Response> {
    const target = new URL(url);
    const cookie = this.cookieHeader(target);
    const response = await fetch(target, {
      method,
      redirect: 'manual',
      headers: {
        'user-agent': this.userAgent,
        accept: 'text/html,application/json;q=0.9,*/*;q=0.8',
        ...(cookie && { cookie }),
        ...headers,
      },
      body: body ?? null,
      signal: AbortSignal.timeout(10_000),
    });
    this.store(target, response.headers.getSetCookie());
    return response;
  }

  /**
   * Goes to `url` as a browser would: follows redirects and `<meta http-equiv=refresh>` until a
   * page that does neither; resolves with that page.
   */
  async navigate(
    url: string,
    init: { method?: string; headers?: Record<string, string>; body?: URLSearchParams } = {},
  ): Promise<Page> {
    const visited: string[] = [];
    let next: { url: string; init: typeof init } = { url, init };
    for (let hop = 0; hop < MAX_HOPS; hop += 1) {
      visited.push(next.url);
      const response = await this.request(next.url, next.init);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel();
        const keep = response.status === 307 || response.status === 308;
        next = { url: new URL(location, next.url).href, init: keep ? next.init : {} };
        continue;
      }
      const text = await response.text();
      const refresh = metaRefresh(text);
      if (refresh !== undefined && response.ok) {
        next = { url: new URL(refresh, next.url).href, init: {} };
        continue;
      }
      return { url: next.url, status: response.status, headers: response.headers, text, visited };
    }
    throw new Error(`more than ${MAX_HOPS} redirects from ${url}: ${visited.join(' → ')}`);
  }

  /** Submits `form` with `values` over its own fields, and follows what comes back. */
  submit(form: Form, values: Record<string, string> = {}): Promise<Page> {
    const params = new URLSearchParams({ ...form.fields, ...values });
    if (form.method === 'get') {
      const target = new URL(form.action);
      for (const [name, value] of params) target.searchParams.set(name, value);
      return this.navigate(target.href);
    }
    return this.navigate(form.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: params,
    });
  }

  private expired(cookie: StoredCookie): boolean {
    return cookie.expiresAt !== undefined && cookie.expiresAt <= Date.now();
  }

  private cookieHeader(url: URL): string {
    const cookies = this.jar.get(url.hostname);
    if (!cookies) return '';
    return [...cookies]
      .filter(([, c]) => !this.expired(c) && pathMatches(url.pathname, c.path))
      .map(([name, c]) => `${name}=${c.value}`)
      .join('; ');
  }

  private store(url: URL, setCookies: string[]): void {
    for (const line of setCookies) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const at = pair.indexOf('=');
      if (at <= 0) continue;
      const name = pair.slice(0, at);
      const cookie: StoredCookie = {
        value: pair.slice(at + 1),
        path: defaultPath(url.pathname),
        expiresAt: undefined,
      };
      for (const attribute of attributes) {
        const [key = '', value = ''] = attribute.split('=');
        const lower = key.toLowerCase();
        if (lower === 'path' && value.startsWith('/')) cookie.path = value;
        if (lower === 'max-age') cookie.expiresAt = Date.now() + Number(value) * 1000;
        if (lower === 'expires' && cookie.expiresAt === undefined) {
          const at = Date.parse(attribute.slice(attribute.indexOf('=') + 1));
          if (!Number.isNaN(at)) cookie.expiresAt = at;
        }
      }
      const cookies = this.jar.get(url.hostname) ?? new Map<string, StoredCookie>();
      this.jar.set(url.hostname, cookies);
      if (this.expired(cookie)) cookies.delete(name);
      else cookies.set(name, cookie);
    }
  }
}

/** RFC 6265 §5.1.4. */
function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

/** RFC 6265 §5.1.4: the directory of the request path. */
function defaultPath(requestPath: string): string {
  const at = requestPath.lastIndexOf('/');
  return at <= 0 ? '/' : requestPath.slice(0, at);
}

function attributesOf(tag: string): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const match of tag.matchAll(
    /([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]+))?/g,
  )) {
    const [, name = '', raw] = match;
    attributes[name.toLowerCase()] = raw === undefined ? '' : unquote(raw);
  }
  return attributes;
}

function unquote(raw: string): string {
  const value = /^["']/.test(raw) ? raw.slice(1, -1) : raw;
  return value
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&#x27;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');
}

/** The URL of a `<meta http-equiv="refresh" content="0;url=…">`, if the page has one. */
export function metaRefresh(html: string): string | undefined {
  for (const match of html.matchAll(/<meta\b[^>]*>/gi)) {
    const attributes = attributesOf(match[0].slice(5));
    if (attributes['http-equiv']?.toLowerCase() !== 'refresh') continue;
    const url = /url\s*=\s*['"]?([^'"]+)['"]?/i.exec(attributes.content ?? '')?.[1];
    if (url) return url.trim();
  }
  return undefined;
}

/**
 * The forms of an HTML page, with their fields' values as served: the fields inside each
 * form, and those elsewhere that name the form by its id (`<button form="…">`).
 */
export function parseForms(html: string, pageUrl: string): Form[] {
  const forms: Form[] = [];
  const fieldTags = /<(input|button)\b([^>]*)>/gi;
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attributes = attributesOf(match[1] ?? '');
    const form: Form = {
      action: new URL(attributes.action || pageUrl, pageUrl).href,
      method: attributes.method?.toLowerCase() === 'get' ? 'get' : 'post',
      fields: {},
      passwordFields: [],
      textFields: [],
    };
    const inside = [...(match[2] ?? '').matchAll(fieldTags)].map((field) => ({
      tag: field[1] ?? '',
      input: attributesOf(field[2] ?? ''),
    }));
    const outside = attributes.id
      ? [...html.matchAll(fieldTags)]
          .map((field) => ({ tag: field[1] ?? '', input: attributesOf(field[2] ?? '') }))
          .filter(({ input }) => input.form === attributes.id)
      : [];
    for (const { tag, input } of [...inside, ...outside]) addField(form, tag, input);
    forms.push(form);
  }
  return forms;
}

function addField(form: Form, tag: string, input: Record<string, string>): void {
  if (!input.name) return;
  const type = (input.type ?? (tag.toLowerCase() === 'button' ? 'submit' : 'text')).toLowerCase();
  if (type === 'password') form.passwordFields.push(input.name);
  if (type === 'text' || type === 'email') form.textFields.push(input.name);
  if ((type === 'checkbox' || type === 'radio') && !('checked' in input)) return;
  // A page's submit buttons: the first one counts, as if clicked.
  if (type === 'submit' && input.name in form.fields) return;
  form.fields[input.name] = input.value ?? '';
}

/**
 * Walks a sign-in through an OpenID provider's pages: from `startUrl` (e.g. the gateway's
 * `/bff/login/oidc`), fills the first form with a password field with `username` and
 * `password`, submits any other form the provider shows (consent), and resolves with the first
 * page that is not the provider's. `loginForms` says how many login forms were shown: 0 when
 * the provider's single sign-on session answered without asking.
 */
export async function signInThroughProvider(
  client: BrowserClient,
  startUrl: string,
  providerOrigin: string,
  { username, password }: { username: string; password: string },
): Promise<Page & { loginForms: number }> {
  let page = await client.navigate(startUrl);
  let loginForms = 0;
  for (let step = 0; step < 5 && new URL(page.url).origin === providerOrigin; step += 1) {
    const [form] = parseForms(page.text, page.url);
    if (!form) throw new Error(`the provider showed no form at ${page.url} (${page.status})`);
    const [passwordField] = form.passwordFields;
    const [userField] = form.textFields;
    if (passwordField !== undefined && userField !== undefined) {
      loginForms += 1;
      page = await client.submit(form, { [userField]: username, [passwordField]: password });
    } else {
      page = await client.submit(form);
    }
  }
  if (new URL(page.url).origin === providerOrigin)
    throw new Error(`still at the provider after 5 forms: ${page.url} (${page.status})`);
  return { ...page, loginForms };
}

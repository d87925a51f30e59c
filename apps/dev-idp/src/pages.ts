// The dev provider's pages: server-rendered HTML, plain forms, no script, nothing from another
// origin (its CSP, page-headers below, says so).

const escape = (value: unknown): string =>
  String(value).replace(
    /[&<>"']/g,
    (char) =>
      ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char] ?? char,
  );

/** The headers of every page the dev provider renders itself. */
export const PAGE_HEADERS: Record<string, string> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const STYLE = `
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1b1f24}
main{max-width:24rem;margin:3rem auto;padding:1.5rem 2rem;background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.25)}
h1{font-size:1.4rem;margin-top:0}
label{display:block;margin:.8rem 0 .25rem;font-weight:600}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.55rem;font-size:1rem;border:1px solid #6b7280;border-radius:4px}
button{margin-top:1rem;padding:.6rem 1rem;font-size:1rem;border-radius:4px;border:1px solid #1d4ed8;background:#1d4ed8;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#1d4ed8}
.error{color:#a50e0e;background:#fdecea;padding:.5rem;border-radius:4px}
.note{color:#4b5563;font-size:.9rem}
ul{padding-left:1.2rem}`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)} · dev OpenID provider</title><style>${STYLE}</style></head>
<body><main>${body}<p class="note">Development OpenID provider of the local stack: never for production.</p></main></body></html>`;
}

const cancelForm = (uid: string) =>
  `<form method="post" action="/interaction/${escape(uid)}/abort"><button type="submit" class="secondary">Cancel</button></form>`;

export function loginPage({
  uid,
  client,
  username = '',
  error,
}: {
  uid: string;
  client: string;
  username?: string;
  error?: string;
}): string {
  return page(
    'Sign in',
    `<h1>Sign in</h1>
<p>to continue to <strong>${escape(client)}</strong></p>
${error === undefined ? '' : `<p class="error" role="alert" id="login-error">${escape(error)}</p>`}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="${escape(username)}" required autofocus autocapitalize="none" spellcheck="false"${error === undefined ? '' : ' aria-describedby="login-error"'}>
<label for="password">Password</label>
<input type="password" id="password" name="password" required>
<button type="submit">Sign in</button>
</form>
${cancelForm(uid)}
<p class="note">Demo users: alice, bob, admin (their passwords are the session service’s demo passwords).</p>`,
  );
}

export function consentPage({
  uid,
  client,
  username,
  scopes,
  claims,
}: {
  uid: string;
  client: string;
  username: string;
  scopes: string[];
  claims: string[];
}): string {
  const items = [
    ...scopes.map((s) => `scope <code>${escape(s)}</code>`),
    ...claims.map((c) => `claim <code>${escape(c)}</code>`),
  ];
  return page(
    'Allow access',
    `<h1>Allow access</h1>
<p><strong>${escape(client)}</strong> asks to know who you are (signed in as <strong>${escape(username)}</strong>):</p>
<ul>${items.map((item) => `<li>${item}</li>`).join('')}</ul>
<form method="post" action="/interaction/${escape(uid)}/confirm"><button type="submit">Allow</button></form>
${cancelForm(uid)}`,
  );
}

/** oidc-provider's end-session confirmation: `form` is its own (hidden xsrf field, id op.logoutForm). */
export function logoutPage(host: string, form: string): string {
  return page(
    'Sign out',
    `<h1>Sign out</h1>
<p>Sign out of <strong>${escape(host)}</strong>, and of every app you signed in to with it?</p>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Yes, sign me out</button>
<button type="submit" form="op.logoutForm" class="secondary">No, only this app</button>`,
  );
}

export function logoutSuccessPage(client: string | undefined): string {
  return page(
    'Signed out',
    `<h1>Signed out</h1><p>You are signed out${client === undefined ? '' : ` of ${escape(client)}`}.</p>`,
  );
}

export function errorPage(out: Record<string, unknown>): string {
  return page(
    'Error',
    `<h1>Something went wrong</h1>
<dl>${Object.entries(out)
      .map(([key, value]) => `<dt>${escape(key)}</dt><dd>${escape(value)}</dd>`)
      .join('')}</dl>`,
  );
}

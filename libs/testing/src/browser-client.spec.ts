import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BrowserClient, metaRefresh, parseForms } from './browser-client';
import { closeServer } from './http-server';

describe('parseForms', () => {
  it('reads action, method and fields, with the first submit button and checked boxes only', () => {
    const html = `
      <form method="POST" action="/interaction/abc/login">
        <input type="hidden" name="xsrf" value="t&amp;k">
        <label>User <input type="text" name="login" autofocus></label>
        <input type=password name='password'>
        <input type="checkbox" name="remember" value="yes">
        <input type="checkbox" name="terms" value="ok" checked>
        <button type="submit" name="logout" value="yes">Yes</button>
        <button type="submit" name="logout" value="no">No</button>
      </form>`;
    expect(parseForms(html, 'http://127.0.0.1:4000/interaction/abc')).toEqual([
      {
        action: 'http://127.0.0.1:4000/interaction/abc/login',
        method: 'post',
        fields: { xsrf: 't&k', login: '', password: '', terms: 'ok', logout: 'yes' },
        passwordFields: ['password'],
        textFields: ['login'],
      },
    ]);
  });

  it('counts the fields that name the form by its id, wherever they are', () => {
    const html = `<form id="op.logoutForm" method="post" action="/session/end/confirm">
        <input type="hidden" name="xsrf" value="x"></form>
      <button type="submit" form="op.logoutForm" name="logout" value="yes">Yes</button>
      <button type="submit" form="other" name="stray" value="no">No</button>`;
    expect(parseForms(html, 'http://idp/session/end')[0]?.fields).toEqual({
      xsrf: 'x',
      logout: 'yes',
    });
  });

  it('submits to the page itself when the form names no action', () => {
    const [form] = parseForms('<form method="get"><input name="q"></form>', 'http://h/p?x=1');
    expect(form).toMatchObject({ action: 'http://h/p?x=1', method: 'get' });
  });
});

describe('metaRefresh', () => {
  it('finds the URL of a refresh, in either quoting', () => {
    expect(metaRefresh('<meta http-equiv="refresh" content="0;url=/home">')).toBe('/home');
    expect(metaRefresh("<meta content='0; URL=/x?a=1' http-equiv='Refresh'>")).toBe('/x?a=1');
    expect(metaRefresh('<meta charset="utf-8">')).toBeUndefined();
  });
});

describe('BrowserClient', () => {
  it('keeps cookies by host and path, drops expired ones, and follows redirects and refreshes', async () => {
    const server = createServer((request, response) => {
      const seen = request.headers.cookie ?? '';
      if (request.url === '/start') {
        response.setHeader('set-cookie', [
          'a=1; Path=/',
          'scoped=2; Path=/only',
          'gone=3; Max-Age=0',
        ]);
        response.writeHead(302, { location: '/only/here' }).end();
      } else if (request.url === '/only/here') {
        response.end('<meta http-equiv="refresh" content="0;url=/end">');
      } else {
        response.end(`cookies: ${seen}`);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const client = new BrowserClient();
      const page = await client.navigate(`${base}/start`);
      expect(page.visited).toEqual([`${base}/start`, `${base}/only/here`, `${base}/end`]);
      expect(page.text).toBe('cookies: a=1');
      expect(client.cookie('127.0.0.1', 'scoped')).toBe('2');
      expect(client.cookie('127.0.0.1', 'gone')).toBeUndefined();
      expect(client.cookie('localhost', 'a')).toBeUndefined();
    } finally {
      await closeServer(server);
    }
  });
});

import { SET_MEDIA_TYPE } from '@app/contracts';
import http from 'node:http';
import https from 'node:https';

/** How one push ended (RFC 8935 section 2): 202 (any 2xx) delivered; 400 the receiver refused the SET
 * itself (sending it again cannot help); anything else is worth another attempt. */
export type PushOutcome =
  | { outcome: 'delivered' }
  | { outcome: 'rejected'; detail: string }
  | { outcome: 'failed' | 'timeout'; detail: string };

/**
 * Pushes SETs to one receiver over connections of its own (kept alive, at most `sockets`),
 * so that a slow receiver holds only its own sockets.
 */
export class PushClient {
  private readonly agent: http.Agent;

  constructor(
    private readonly url: URL,
    private readonly timeoutMs: number,
    sockets: number,
    private readonly authorization?: string,
  ) {
    const options = { keepAlive: true, maxSockets: sockets };
    this.agent = url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
  }

  push(set: string): Promise<PushOutcome> {
    const transport = this.url.protocol === 'https:' ? https : http;
    return new Promise((resolve) => {
      const request = transport.request(
        this.url,
        {
          method: 'POST',
          agent: this.agent,
          headers: {
            'content-type': SET_MEDIA_TYPE,
            accept: 'application/json',
            'content-length': Buffer.byteLength(set),
            ...(this.authorization !== undefined && { authorization: this.authorization }),
          },
          timeout: this.timeoutMs,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => {
            if (chunks.length < 16) chunks.push(chunk);
          });
          response.on('end', () => {
            const status = response.statusCode ?? 0;
            const body = Buffer.concat(chunks).toString('utf8').slice(0, 512);
            if (status >= 200 && status < 300) resolve({ outcome: 'delivered' });
            else if (status === 400) resolve({ outcome: 'rejected', detail: `400 ${body}` });
            else resolve({ outcome: 'failed', detail: `HTTP ${status}` });
          });
          response.on('error', (error) => {
            resolve({ outcome: 'failed', detail: error.message });
          });
        },
      );
      request.on('timeout', () => {
        request.destroy();
        resolve({ outcome: 'timeout', detail: `no answer within ${this.timeoutMs} ms` });
      });
      request.on('error', (error) => {
        resolve({ outcome: 'failed', detail: error.message });
      });
      request.end(set);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

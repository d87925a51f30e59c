import type { Server } from 'node:http';

/**
 * Closes a test's HTTP server at once. fetch keeps connections alive; without closing them,
 * `close` would wait for their idle timeout.
 */
export async function closeServer(server: Server | undefined): Promise<void> {
  if (!server?.listening) return;
  const closed = new Promise<void>((resolve, reject) => {
    server.close((error) => {
      if (error) reject(error);
      else resolve();
    });
  });
  server.closeAllConnections();
  await closed;
}

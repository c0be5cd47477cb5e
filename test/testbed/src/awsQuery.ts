/**
 * What the testbed's AWS Query API servers (SimpleDB, STS) share: an HTTP server on loopback,
 * reading a request's parameters (the query string of a GET, plus the form body of a POST,
 * bounded in size), sending XML, escaping text for it; and pointing this process's AWS SDK
 * somewhere with environment variables that can be put back.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** An HTTP server on 127.0.0.1 (`port`, default an ephemeral one) for `handle`; a handler that throws loses its connection. */
export async function listenOnLoopback(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  port = 0,
): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createServer((req, res) => void handle(req, res).catch(() => res.destroy()));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A Query API request: its method, Host header, path and parameters. */
export interface QueryRequest {
  method: string;
  host: string;
  path: string;
  params: Map<string, string>;
}

/** The request's parameters; rejects with `tooLarge()` once the body passes `maxBodyBytes`. */
export async function readQueryRequest(
  req: IncomingMessage,
  limit: { maxBodyBytes: number; tooLarge: () => Error },
): Promise<QueryRequest> {
  const raw = req.url ?? '/';
  const q = raw.indexOf('?');
  const params = new Map(new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)));
  const body = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit.maxBodyBytes) reject(limit.tooLarge());
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
  if (req.method === 'POST') for (const [k, v] of new URLSearchParams(body)) params.set(k, v);
  return { method: req.method ?? '', host: req.headers.host ?? '', path: q < 0 ? raw : raw.slice(0, q), params };
}

export function sendXml(res: ServerResponse, status: number, xml: string): void {
  res.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(xml) });
  res.end(xml);
}

/** Escapes markup, and a carriage return as a reference (an XML parser would turn a literal one into a newline). */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"'\r]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#13;' })[c]!);
}

/**
 * Sets (a string) or removes (undefined) environment variables of this process; returns a
 * function that puts back what was there before.
 */
export function setEnv(values: Record<string, string | undefined>): () => void {
  const saved = Object.fromEntries(Object.keys(values).map((k) => [k, process.env[k]]));
  const apply = (vars: Record<string, string | undefined>): void => {
    for (const [k, v] of Object.entries(vars)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  apply(values);
  return () => apply(saved);
}

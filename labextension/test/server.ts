/**
 * A real HTTP server on 127.0.0.1 for the frontend's unit tests: it records every request
 * and answers with the reply the test set (or the next of a queue of replies).
 */

import * as http from 'http';
import { AddressInfo } from 'net';

export interface IRecorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface IReply {
  status?: number;
  body?: unknown;
  raw?: string;
  contentType?: string;
}

/** A recording server whose next reply each test sets. */
export class RecordingServer {
  readonly requests: IRecorded[] = [];
  reply: IReply = { body: { code: 0, msg: 'Success' } };
  /** When set, computes the reply from the request instead of `reply`. */
  respond: ((request: IRecorded) => IReply) | null = null;
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', chunk => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const request: IRecorded = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf-8')
      };
      this.requests.push(request);
      const reply = this.respond ? this.respond(request) : this.reply;
      const { status = 200, body, raw, contentType = 'application/json' } = reply;
      res.writeHead(status, { 'Content-Type': contentType });
      res.end(raw ?? JSON.stringify(body));
    });
  });

  async start(): Promise<string> {
    await new Promise<void>(resolve => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/base/`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>(resolve => this.server.close(() => resolve()));
  }

  get last(): IRecorded {
    return this.requests[this.requests.length - 1];
  }
}

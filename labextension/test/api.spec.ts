/**
 * The request layer against a real HTTP server on 127.0.0.1: what goes on the wire
 * (method, path, query, JSON body, the token header) and what each reply becomes.
 */

import { ServerConnection } from '@jupyterlab/services';
import { IJob, ManateeApi, ManateeError, errorText, newestFirst } from '../src/api';
import { RecordingServer } from './server';

const TOKEN = 'secret-token';
let server: RecordingServer;
let api: ManateeApi;

function job(id: number, status = 5): IJob {
  return {
    id,
    uuid: `uuid-${id}`,
    creator: 'alice',
    job_status: status,
    jupyter_file_name: 'nb.ipynb',
    created_at: '2026-01-15 12:30:00',
    updated_at: '2026-01-15 12:31:00'
  };
}

beforeEach(async () => {
  server = new RecordingServer();
  const baseUrl = await server.start();
  api = new ManateeApi(
    ServerConnection.makeSettings({ baseUrl, token: TOKEN, appendToken: false })
  );
});

afterEach(async () => {
  await server.stop();
});

describe('requests', () => {
  it('lists jobs with GET manatee/jobs, the page and page size in the query', async () => {
    server.reply = { body: { code: 0, msg: 'Success', jobs: [], total: 0 } };
    await api.listJobs(2, 5);
    expect(server.last.method).toBe('GET');
    expect(server.last.path).toBe('/base/manatee/jobs');
    expect(server.last.query.get('page')).toBe('2');
    expect(server.last.query.get('page_size')).toBe('5');
  });

  it('sends the Jupyter token on every request', async () => {
    server.reply = { body: { code: 0, configured: true } };
    await api.status();
    expect(server.last.headers.authorization).toBe(`token ${TOKEN}`);
  });

  it('returns the jobs of a page newest first even when the server sends them oldest first', async () => {
    server.reply = { body: { code: 0, jobs: [job(3), job(9), job(5)], total: 12 } };
    const page = await api.listJobs();
    expect(page.jobs.map(j => j.id)).toEqual([9, 5, 3]);
    expect(page.total).toBe(12);
  });

  it('posts the manifest request as JSON with the path and the base name', async () => {
    server.reply = {
      body: { code: 0, notebook: 'nb.ipynb', file_count: 2, total_bytes: 10, excluded: [] }
    };
    await api.manifest('analysis/nb.ipynb');
    expect(server.last.method).toBe('POST');
    expect(server.last.path).toBe('/base/manatee/manifest');
    expect(server.last.headers['content-type']).toBe('application/json');
    expect(JSON.parse(server.last.body)).toEqual({
      path: 'analysis/nb.ipynb',
      filename: 'nb.ipynb'
    });
  });

  it('strips a leading slash from the notebook path (paths are from the contents root)', async () => {
    server.reply = { body: { code: 0, uuid: 'u-1' } };
    await api.submit('/nb.ipynb');
    expect(JSON.parse(server.last.body)).toEqual({ path: 'nb.ipynb', filename: 'nb.ipynb' });
  });

  it('submits with POST manatee/jobs and returns the job uuid', async () => {
    server.reply = { body: { code: 0, msg: 'Success', uuid: 'u-42', file_count: 3 } };
    const reply = await api.submit('nb.ipynb');
    expect(server.last.method).toBe('POST');
    expect(server.last.path).toBe('/base/manatee/jobs');
    expect(reply.uuid).toBe('u-42');
  });

  it('keeps the warning of a submit reply for the panel to show', async () => {
    const warning =
      "The ManaTEE API accepted nb.ipynb but gave the job the uuid 'bob-1', which is not " +
      'a canonical job uuid: this server keeps no record of it.';
    server.reply = { body: { code: 0, msg: 'Success', uuid: 'bob-1', warning } };
    const reply = await api.submit('nb.ipynb');
    expect(reply.uuid).toBe('bob-1');
    expect(reply.warning).toBe(warning);
  });

  it.each([
    ['absent', {}],
    ['empty', { warning: '' }],
    ['not a string', { warning: { text: 'x' } }]
  ])('a submit reply whose warning is %s has none', async (_what, extra) => {
    server.reply = { body: { code: 0, msg: 'Success', uuid: 'u-42', ...extra } };
    const reply = await api.submit('nb.ipynb');
    expect(reply.warning).toBeNull();
  });

  it('deletes with DELETE manatee/jobs/<uuid>', async () => {
    server.reply = { body: { code: 0, uuid: 'a-b-c' } };
    await api.deleteJob('a-b-c');
    expect(server.last.method).toBe('DELETE');
    expect(server.last.path).toBe('/base/manatee/jobs/a-b-c');
  });

  it('asks for an output with POST manatee/output and the numeric id', async () => {
    server.reply = { body: { code: 0, filename: 'out-7-nb.ipynb', path: 'out-7-nb.ipynb' } };
    const reply = await api.output(7);
    expect(JSON.parse(server.last.body)).toEqual({ id: 7 });
    expect(reply.filename).toBe('out-7-nb.ipynb');
  });

  it('asks for a report with GET manatee/attestation?id= and keeps the verification', async () => {
    const verification = {
      verdict: 'verified',
      verified: true,
      summary: 'ok',
      checks: [{ name: 'signature', status: 'pass', reason: 'RS256 key matched' }]
    };
    server.reply = {
      body: { code: 0, token: 'a.b.c', kind: 'jwt', claims: { eat_nonce: 'n' }, verification }
    };
    const reply = await api.attestation(7);
    expect(server.last.path).toBe('/base/manatee/attestation');
    expect(server.last.query.get('id')).toBe('7');
    expect(reply.claims).toEqual({ eat_nonce: 'n' });
    expect(reply.verification).toEqual(verification);
  });
});

describe('errors', () => {
  it.each([
    [409, 'Job limit reached', 'You have reached the limit of jobs in progress (3 at a time)'],
    [413, 'Workspace too large', 'The workspace is 6.0 GB, over the 5.0 GB cap'],
    [502, 'ManaTEE API unreachable', 'Cannot connect to the ManaTEE API'],
    [503, 'ManaTEE API not configured', 'set DATA_CLEAN_ROOM_HOST or c.ManateeConfig.api_url'],
    [504, 'ManaTEE API timed out', 'The ManaTEE API did not answer in 60 s']
  ])(
    'an HTTP %i reply becomes an error with the server message in words',
    async (status, title, message) => {
      server.reply = { status, body: { code: status, msg: message, message, reason: 'X' } };
      const error = await api.submit('nb.ipynb').catch(e => e);
      expect(error).toBeInstanceOf(ManateeError);
      expect(error.status).toBe(status);
      expect(error.message).toBe(message);
      expect(error.title).toBe(title);
      expect(errorText(error)).toBe(`${title}: ${message}`);
    }
  );

  it('a 200 reply with a non-zero code is an error carrying the API msg', async () => {
    server.reply = { body: { code: 10001, msg: 'creator too long' } };
    const error = await api.listJobs().catch(e => e);
    expect(error).toBeInstanceOf(ManateeError);
    expect(error.message).toContain('creator too long');
  });

  it('a non-JSON error page becomes an error quoting the start of the page', async () => {
    server.reply = { status: 500, raw: 'Internal explosion\n\nstack', contentType: 'text/plain' };
    const error = await api.listJobs().catch(e => e);
    expect(error.status).toBe(500);
    expect(error.message).toBe('Internal explosion stack');
  });

  it('an HTML 404 says the server extension is not answering', async () => {
    server.reply = { status: 404, raw: '<html>404</html>', contentType: 'text/html' };
    const error = await api.status().catch(e => e);
    expect(error.status).toBe(404);
    expect(error.message).toContain('jupyterlab_manatee server extension is not answering');
  });

  it('a JSON 404 (unknown job) keeps the server message', async () => {
    server.reply = { status: 404, body: { message: 'No output for job 7 yet' } };
    const error = await api.output(7).catch(e => e);
    expect(error.message).toBe('No output for job 7 yet');
  });

  it('a reply without the expected fields is an error, not undefined data', async () => {
    server.reply = { body: { code: 0, msg: 'Success' } };
    const error = await api.listJobs().catch(e => e);
    expect(error).toBeInstanceOf(ManateeError);
    expect(error.message).toContain('lacks the expected fields');
  });

  it('a server that does not answer becomes status 0 with a sentence', async () => {
    await server.stop();
    const error = await api.listJobs().catch(e => e);
    expect(error).toBeInstanceOf(ManateeError);
    expect(error.status).toBe(0);
    expect(error.title).toBe('Cannot reach the Jupyter server');
    server = new RecordingServer();
    await server.start();
  });
});

describe('newestFirst', () => {
  it('orders by id, highest first, without changing its input', () => {
    const jobs = [job(1), job(3), job(2)];
    expect(newestFirst(jobs).map(j => j.id)).toEqual([3, 2, 1]);
    expect(jobs.map(j => j.id)).toEqual([1, 3, 2]);
  });
});

/**
 * The panel's job list state against a real HTTP server: it refreshes by itself only
 * while a listed job is in progress, and pages stay valid when jobs go away.
 */

import { Contents, ServerConnection } from '@jupyterlab/services';
import { IJob, ManateeApi } from '../src/api';
import { ShieldModel } from '../src/model';
import { IRecorded, RecordingServer } from './server';

const POLL_MS = 40;
let server: RecordingServer;
let model: ShieldModel;

function job(id: number, status: number): IJob {
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

function jobRequests(): IRecorded[] {
  return server.requests.filter(r => r.path.endsWith('/manatee/jobs'));
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

async function until(check: () => boolean, what: string, timeout = 3000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(10);
  }
}

beforeEach(async () => {
  server = new RecordingServer();
  const baseUrl = await server.start();
  const api = new ManateeApi(ServerConnection.makeSettings({ baseUrl, appendToken: false }));
  // the job list never touches contents; sources are exercised in the browser tests
  model = new ShieldModel({
    api,
    contents: null as unknown as Contents.IManager,
    pollInterval: POLL_MS,
    pageSize: 2
  });
});

afterEach(async () => {
  model.dispose();
  await server.stop();
});

it('keeps refreshing while a job is in progress and stops once none is', async () => {
  let status = 4;
  server.respond = () => ({ body: { code: 0, jobs: [job(1, status)], total: 1 } });
  await model.refreshJobs();
  expect(model.polling).toBe(true);

  await until(() => jobRequests().length >= 3, 'two automatic refreshes');
  status = 5;
  await until(() => model.jobs[0]?.job_status === 5, 'the finished status');
  expect(model.polling).toBe(false);
  const seen = jobRequests().length;
  await sleep(POLL_MS * 5);
  expect(jobRequests().length).toBe(seen);
});

it('keeps refreshing while a Finished job is being scanned, until its cells are known', async () => {
  let scanned = false;
  server.respond = () => ({
    body: {
      code: 0,
      jobs: [
        {
          ...job(1, 5),
          cells_raised: scanned ? { count: 1, first: 'ValueError: boom', first_cell: 2 } : null,
          cells_raised_pending: !scanned
        }
      ],
      total: 1
    }
  });
  await model.refreshJobs();
  expect(model.polling).toBe(true);

  await until(() => jobRequests().length >= 2, 'an automatic refresh');
  scanned = true;
  await until(() => model.jobs[0]?.cells_raised?.count === 1, 'the scan');
  expect(model.polling).toBe(false);
});

it('does not refresh by itself when no job is in progress', async () => {
  server.respond = () => ({ body: { code: 0, jobs: [job(2, 5), job(1, 7)], total: 2 } });
  await model.refreshJobs();
  expect(model.polling).toBe(false);
  await sleep(POLL_MS * 4);
  expect(jobRequests()).toHaveLength(1);
});

it('stops refreshing after an error instead of repeating it', async () => {
  server.respond = () => ({ status: 502, body: { message: 'Cannot connect to the ManaTEE API' } });
  await model.refreshJobs();
  expect(model.jobsError).toBe('ManaTEE API unreachable: Cannot connect to the ManaTEE API');
  expect(model.polling).toBe(false);
});

it('shows the last page that has jobs when the current page empties', async () => {
  const all = [job(5, 5), job(4, 5), job(3, 5)];
  server.respond = request => {
    const page = Number(request.query.get('page'));
    return { body: { code: 0, jobs: all.slice((page - 1) * 2, page * 2), total: all.length } };
  };
  await model.refreshJobs();
  await model.setPage(2);
  expect(model.jobs.map(j => j.id)).toEqual([3]);

  all.pop(); // job 3 deleted elsewhere
  await model.refreshJobs();
  expect(model.page).toBe(1);
  expect(model.jobs.map(j => j.id)).toEqual([5, 4]);
});

it('asks for the configured page size', async () => {
  server.respond = () => ({ body: { code: 0, jobs: [], total: 0 } });
  await model.refreshJobs();
  expect(jobRequests()[0].query.get('page_size')).toBe('2');
  expect(model.jobsLoaded).toBe(true);
});

it('keeps refreshing while the server uploads a submission, until it is a job', async () => {
  const upload = { id: 'a'.repeat(32), notebook: 'nb.ipynb', path: 'nb.ipynb', started_at: 'x' };
  let uploaded = false;
  server.respond = () => ({
    body: uploaded
      ? { code: 0, jobs: [job(1, 5)], total: 1, submitting: [] }
      : { code: 0, jobs: [], total: 0, submitting: [upload] }
  });
  await model.refreshJobs();
  expect(model.uploads.map(u => u.notebook)).toEqual(['nb.ipynb']);
  expect(model.polling).toBe(true);

  uploaded = true;
  await until(() => model.jobs.length === 1, 'the job the upload became');
  expect(model.uploads).toEqual([]);
  expect(model.polling).toBe(false);
});

describe('queued submissions', () => {
  function entry(id: string, state: string, extra: Record<string, unknown> = {}) {
    return {
      id,
      notebook: 'nb.ipynb',
      path: 'nb.ipynb',
      state,
      created_at: '2026-01-15T12:30:00+00:00',
      waits_for: { id: 1, uuid: 'uuid-1' },
      ...extra
    };
  }

  it('keeps refreshing while a submission is queued, even with no job in progress', async () => {
    server.respond = () => ({
      body: { code: 0, jobs: [job(1, 5)], total: 1, queued: [entry('q1', 'queued')] }
    });
    await model.refreshJobs();
    expect(model.polling).toBe(true);
    expect(model.pendingQueue.map(e => e.id)).toEqual(['q1']);
  });

  it('tells the outcome of an entry it saw waiting, once', async () => {
    const outcomes: string[] = [];
    model.queueOutcome.connect((_, e) => outcomes.push(`${e.id}:${e.state}:${e.uuid}`));
    let state = 'queued';
    server.respond = () => ({
      body: {
        code: 0,
        jobs: [job(1, 1)],
        total: 1,
        queued: [entry('q1', state, state === 'sent' ? { uuid: 'uuid-2' } : {})]
      }
    });
    await model.refreshJobs();
    state = 'sent';
    await until(() => outcomes.length === 1, 'the outcome');
    const seen = jobRequests().length;
    await until(() => jobRequests().length >= seen + 2, 'two more refreshes');
    expect(outcomes).toEqual(['q1:sent:uuid-2']);
  });

  it('tells a failure of an entry it was told about at submission, seen only failed', async () => {
    const outcomes: string[] = [];
    model.queueOutcome.connect((_, e) => outcomes.push(`${e.id}:${e.state}:${e.error}`));
    model.watchQueued('q2');
    server.respond = () => ({
      body: {
        code: 0,
        jobs: [job(1, 5)],
        total: 1,
        queued: [entry('q2', 'failed', { error: 'job limit reached' })]
      }
    });
    await model.refreshJobs();
    expect(outcomes).toEqual(['q2:failed:job limit reached']);
    expect(model.failedQueue.map(e => e.id)).toEqual(['q2']);
  });

  it('says nothing of outcomes from before this page was opened', async () => {
    const outcomes: string[] = [];
    model.queueOutcome.connect((_, e) => outcomes.push(e.id));
    server.respond = () => ({
      body: {
        code: 0,
        jobs: [job(1, 5)],
        total: 1,
        queued: [entry('old1', 'sent', { uuid: 'u' }), entry('old2', 'failed', { error: 'x' })]
      }
    });
    await model.refreshJobs();
    expect(outcomes).toEqual([]);
    expect(model.failedQueue).toEqual([]);
    expect(model.polling).toBe(false);
  });
});

describe('configuration checks while the panel is shown', () => {
  function configRequests(): IRecorded[] {
    return server.requests.filter(r => r.path.endsWith('/manatee/config'));
  }

  function config(reachable: boolean) {
    return {
      code: 0,
      configured: true,
      reachable,
      problem: reachable ? null : 'The ManaTEE API did not answer',
      api_url: 'http://api',
      creator: 'alice',
      creator_problem: null
    };
  }

  it('clears the problem by itself once the API answers again', async () => {
    let reachable = false;
    server.respond = r =>
      r.path.endsWith('/manatee/config')
        ? { body: config(reachable) }
        : { body: { code: 0, jobs: [], total: 0 } };
    await model.refreshStatus();
    expect(model.usable).toBe(false);

    model.watchStatus();
    reachable = true;

    await until(() => model.usable, 'the banner to clear');
    await model.unwatchStatus();
  });

  it('backs off while the API stays away', async () => {
    server.respond = () => ({ body: config(false) });
    const backoff = new ShieldModel({
      api: model.api,
      contents: null as unknown as Contents.IManager,
      pollInterval: POLL_MS,
      statusInterval: POLL_MS * 8
    });
    try {
      const started = Date.now();
      backoff.watchStatus();
      await until(() => configRequests().length >= 4, 'four checks', 10000);
      // waits of 1, 2, 4, 8 intervals before the 4th check (a slow machine only adds);
      // without the backoff, 4 intervals
      expect(Date.now() - started).toBeGreaterThanOrEqual(POLL_MS * 15);
    } finally {
      backoff.dispose();
    }
  });

  it('keeps checking at the poll interval while the local backend is being set up', async () => {
    server.respond = () => ({
      body: {
        ...config(false),
        setting_up: { seconds_left: 20, expected_seconds: 25, elapsed_seconds: 5 }
      }
    });
    const settingUp = new ShieldModel({
      api: model.api,
      contents: null as unknown as Contents.IManager,
      pollInterval: POLL_MS,
      statusInterval: POLL_MS * 1000
    });
    try {
      settingUp.watchStatus();
      // its countdown stays current: with the backoff, 7 checks would take 127 intervals
      // (over 5 s); without it, 7
      await until(() => configRequests().length >= 7, 'seven checks', 3000);
    } finally {
      settingUp.dispose();
    }
  });

  it('stops checking when the panel is hidden', async () => {
    server.respond = () => ({ body: config(true) });
    const quick = new ShieldModel({
      api: model.api,
      contents: null as unknown as Contents.IManager,
      pollInterval: POLL_MS,
      statusInterval: POLL_MS
    });
    try {
      quick.watchStatus();
      await until(() => configRequests().length >= 2, 'two checks');
      await quick.unwatchStatus();
      const seen = configRequests().length;
      await sleep(POLL_MS * 5);
      expect(configRequests().length).toBe(seen);
    } finally {
      quick.dispose();
    }
  });
});

describe('the live announcement', () => {
  it('words a status change, and nothing for a refresh that changes nothing', async () => {
    let status = 4;
    server.respond = () => ({ body: { code: 0, jobs: [job(3, status)], total: 1 } });
    await model.refreshJobs();
    expect(model.announcement).toBe('');

    status = 5;
    await model.refreshJobs();
    expect(model.announcement).toBe('Job #3 nb.ipynb: Finished');

    model.announcement = '';
    await model.refreshJobs();
    expect(model.announcement).toBe('');
  });
});

describe('the notice that the safe mapping changed the creator', () => {
  const notice = { old: 'alice@example.org', new: 'alice-example-org-7a64ad' };
  let dismissed = false;
  let dismissStatus = 200;

  beforeEach(() => {
    dismissed = false;
    dismissStatus = 200;
    server.respond = r => {
      if (r.path.endsWith('/manatee/config/creator-notice') && r.method === 'DELETE') {
        if (dismissStatus !== 200) {
          return {
            status: dismissStatus,
            body: { code: dismissStatus, msg: 'disk full', message: 'disk full' }
          };
        }
        dismissed = true;
        return { body: { code: 0, creator_notice: null } };
      }
      return {
        body: {
          code: 0,
          configured: true,
          reachable: true,
          problem: null,
          api_url: 'http://api',
          creator: notice.new,
          creator_problem: null,
          creator_notice: dismissed ? null : notice
        }
      };
    };
  });

  it('carries both names from the configuration', async () => {
    await model.refreshStatus();
    expect(model.status?.creator_notice).toEqual(notice);
  });

  it('is dismissed with DELETE manatee/config/creator-notice and gone at once', async () => {
    await model.refreshStatus();
    await model.dismissCreatorNotice();
    const deletes = server.requests.filter(r => r.method === 'DELETE');
    expect(deletes.map(r => r.path)).toEqual(['/base/manatee/config/creator-notice']);
    expect(model.status?.creator_notice).toBeNull();
  });

  it('stays gone at the next configuration check', async () => {
    await model.refreshStatus();
    await model.dismissCreatorNotice();
    await model.refreshStatus();
    expect(model.status?.creator_notice).toBeNull();
  });

  it('stays, with the reason, when the dismissal fails', async () => {
    dismissStatus = 500;
    await model.refreshStatus();
    await model.dismissCreatorNotice();
    expect(model.status?.creator_notice).toEqual(notice);
    expect(model.creatorNoticeError).toContain('disk full');
  });
});

/**
 * The shield panel's state: configuration, the notebooks of the current folder tree, the
 * current page of jobs, what is busy, and the automatic refresh while jobs move.
 *
 * Views read it and re-render on `changed`; actions (submit, output, ...) update it.
 */

import { Contents } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';
import { IJob, IManateeStatus, IQueuedEntry, IUploadEntry, ManateeApi, errorText } from './api';
import { isInProgress, statusInfo } from './format';

/** Folders never searched for notebooks (as the workspace exclusions). */
const SKIPPED_FOLDERS = new Set([
  'node_modules',
  '__pycache__',
  'venv',
  'env',
  'site-packages',
  '.ipynb_checkpoints'
]);

export const SOURCE_DEPTH = 3;
export const SOURCE_LIMIT = 200;
const FOLDER_LIMIT = 200;

/** What a submission of one notebook is doing now. */
export type SubmitStage = 'checking' | 'confirming' | 'uploading';

/** What an action on one job is doing now. */
export type JobAction = 'output' | 'report' | 'delete';

export interface IShieldModelOptions {
  api: ManateeApi;
  contents: Contents.IManager;
  /** Milliseconds between refreshes while a job is in progress. */
  pollInterval?: number;
  /** Milliseconds between configuration checks while the panel is shown and all is well;
   * after a problem the checks start at `pollInterval` and back off up to this. */
  statusInterval?: number;
  pageSize?: number;
}

export class ShieldModel implements IDisposable {
  constructor(options: IShieldModelOptions) {
    this.api = options.api;
    this._contents = options.contents;
    this.pollInterval = options.pollInterval ?? 3000;
    this.statusInterval = options.statusInterval ?? 30000;
    this.pageSize = options.pageSize ?? 10;
  }

  readonly api: ManateeApi;
  readonly pollInterval: number;
  readonly statusInterval: number;
  readonly pageSize: number;

  // --- configuration -----------------------------------------------------------------
  status: IManateeStatus | null = null;
  statusError: string | null = null;
  /** Why the last dismissal of the creator notice failed (the notice stays). */
  creatorNoticeError: string | null = null;

  // --- sources -----------------------------------------------------------------------
  /** The file browser folder whose tree is listed (contents path, no leading slash). */
  sourcesRoot = '';
  /** Notebook paths from the contents root, sorted. */
  sources: string[] = [];
  sourcesLoading = false;
  sourcesTruncated = false;
  sourcesError: string | null = null;
  readonly submitting = new Map<string, SubmitStage>();
  /** The last failure of a submission per notebook, shown under it until the next try. */
  readonly submitErrors = new Map<string, string>();

  // --- jobs --------------------------------------------------------------------------
  jobs: IJob[] = [];
  total = 0;
  page = 1;
  jobsLoading = false;
  jobsLoaded = false;
  jobsError: string | null = null;
  lastRefreshed: Date | null = null;
  readonly busyJobs = new Map<string, JobAction>();
  /** The last change of a listed job's status, in words, for the panel's live region
   * (announced once; a refresh that changes nothing announces nothing). */
  announcement = '';
  /** Queued submissions (and recent outcomes), oldest first, as the last listing said. */
  queued: IQueuedEntry[] = [];
  /** Queue ids being cancelled. */
  readonly cancelling = new Set<string>();
  /** Submissions the server is uploading now, as the last listing said (also those sent
   * from a page since reloaded: the upload goes on without it). */
  uploads: IUploadEntry[] = [];
  /** A lasting problem of one job (an action on it failed), by uuid, shown on its card
   * until the next action on it or until dismissed. */
  readonly jobProblems = new Map<string, string>();

  /** A queued submission seen waiting was sent (`uuid`) or failed (`error`). */
  get queueOutcome(): ISignal<this, IQueuedEntry> {
    return this._queueOutcome;
  }

  /** Entries still waiting or being sent: what the Jobs list shows above the jobs. */
  get pendingQueue(): IQueuedEntry[] {
    return this.queued.filter(entry => isPending(entry.state));
  }

  /** Entries that could not be sent, until the user dismisses them. */
  get failedQueue(): IQueuedEntry[] {
    return this.queued.filter(entry => entry.state === 'failed' && this._watched.has(entry.id));
  }

  /** Follow a submission the server queued: its outcome is told once it is known. */
  watchQueued(id: string): void {
    this._watched.add(id);
  }

  /** Forget a queued entry (cancelled or dismissed). */
  dropQueued(id: string): void {
    this._watched.delete(id);
    this.queued = this.queued.filter(entry => entry.id !== id);
    this.emit();
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  get pageCount(): number {
    return Math.max(1, Math.ceil(this.total / this.pageSize));
  }

  /** Whether any listed job may still change (the panel then refreshes by itself): also
   * a Finished job whose output the server is still scanning for cells that raised. */
  get anyInProgress(): boolean {
    return (
      this.jobs.some(job => isInProgress(job.job_status) || job.cells_raised_pending === true) ||
      this.queued.some(entry => isPending(entry.state)) ||
      this.uploads.length > 0
    );
  }

  /** Listed jobs in progress plus submissions still queued: what the job limit counts. */
  get jobsInFlight(): number {
    return this.jobs.filter(job => isInProgress(job.job_status)).length + this.pendingQueue.length;
  }

  /** The newest listed job whose image build has not read its workspace (status 0/1): a
   * submission now is queued behind it. */
  get workspaceBlocker(): IJob | null {
    if (this.status?.queue_submissions === false) {
      return null;
    }
    return this.jobs.find(job => job.job_status === 0 || job.job_status === 1) ?? null;
  }

  /** Whether an automatic refresh is scheduled. */
  get polling(): boolean {
    return this._timer !== null;
  }

  /** Whether the panel can talk to the API at all (for disabling actions). */
  get usable(): boolean {
    const s = this.status;
    return s !== null && s.configured && s.reachable !== false && !s.creator_problem;
  }

  emit(): void {
    if (!this._isDisposed) {
      this._changed.emit();
    }
  }

  /** Configuration, sources and jobs, all at once. */
  async refreshAll(): Promise<void> {
    await Promise.all([this.refreshStatus(), this.refreshSources(), this.refreshJobs()]);
  }

  /**
   * The user has read that their creator changed: the server stops carrying the notice.
   * A failure keeps the notice and says why (`creatorNoticeError`).
   */
  async dismissCreatorNotice(): Promise<void> {
    try {
      await this.api.dismissCreatorNotice();
      this.creatorNoticeError = null;
      if (this.status) {
        this.status = { ...this.status, creator_notice: null };
      }
    } catch (error) {
      this.creatorNoticeError = errorText(error);
    }
    this.emit();
  }

  async refreshStatus(): Promise<void> {
    const wasUsable = this.usable;
    try {
      this.status = await this.api.status();
      this.statusError = null;
    } catch (error) {
      this.status = null;
      this.statusError = errorText(error);
    }
    this.emit();
    if (this.usable && !wasUsable && this.jobsError) {
      void this.refreshJobs(); // the cause is gone: so is the list's error
    }
  }

  /**
   * Check the configuration now and then while the panel is shown, so a banner appears
   * and clears by itself: every `statusInterval` while all is well; after a problem from
   * `pollInterval` on, doubling up to `statusInterval`.
   */
  watchStatus(): void {
    if (this._statusWatched || this._isDisposed) {
      return;
    }
    this._statusWatched = true;
    this._statusDelay = this.pollInterval;
    this._scheduleStatus();
  }

  /** Stop the checks; resolves once a check under way (if any) has ended. */
  unwatchStatus(): Promise<void> {
    this._statusWatched = false;
    if (this._statusTimer !== null) {
      clearTimeout(this._statusTimer);
      this._statusTimer = null;
    }
    return this._statusCheck ?? Promise.resolve();
  }

  /** Whether configuration checks are scheduled (the panel is shown). */
  get watchingStatus(): boolean {
    return this._statusWatched;
  }

  private _scheduleStatus(): void {
    // while the local backend is being set up, its countdown stays current
    const delay = this.usable
      ? this.statusInterval
      : this.status?.setting_up
        ? this.pollInterval
        : Math.min(this._statusDelay, this.statusInterval);
    this._statusTimer = setTimeout(() => {
      this._statusTimer = null;
      this._statusCheck = this.refreshStatus().then(() => {
        this._statusCheck = null;
        this._statusDelay = this.usable ? this.pollInterval : this._statusDelay * 2;
        if (this._statusWatched && !this._isDisposed) {
          this._scheduleStatus();
        }
      });
    }, delay);
  }

  /**
   * The current page of jobs. Schedules the next refresh while any listed job is in
   * progress and stops when none is. Concurrent calls share one request.
   */
  refreshJobs(): Promise<void> {
    if (this._jobsRequest) {
      this._jobsAgain = true;
      return this._jobsRequest;
    }
    this._jobsRequest = this._loadJobs().finally(() => {
      this._jobsRequest = null;
      if (this._jobsAgain && !this._isDisposed) {
        this._jobsAgain = false;
        void this.refreshJobs();
      }
    });
    return this._jobsRequest;
  }

  async setPage(page: number): Promise<void> {
    const next = Math.min(Math.max(1, Math.floor(page)), this.pageCount);
    if (next !== this.page) {
      this.page = next;
      this.emit();
      await this.refreshJobs();
    }
  }

  private async _loadJobs(): Promise<void> {
    this._stopPolling();
    this.jobsLoading = true;
    this.emit();
    try {
      let reply = await this.api.listJobs(this.page, this.pageSize);
      if (reply.jobs.length === 0 && this.page > 1 && reply.total > 0) {
        // The page emptied (jobs deleted): show the last page that has jobs.
        this.page = Math.max(1, Math.ceil(reply.total / this.pageSize));
        reply = await this.api.listJobs(this.page, this.pageSize);
      }
      this._announce(reply.jobs);
      this.jobs = reply.jobs;
      this.total = reply.total;
      this._updateQueue(reply.queued);
      this.uploads = reply.submitting;
      this.jobsError = null;
      this.jobsLoaded = true;
      this.lastRefreshed = new Date();
    } catch (error) {
      this.jobsError = errorText(error);
    } finally {
      this.jobsLoading = false;
    }
    if (this.anyInProgress && !this.jobsError && !this._isDisposed) {
      this._timer = setTimeout(() => {
        this._timer = null;
        void this.refreshJobs();
      }, this.pollInterval);
    }
    this.emit();
  }

  /** Word the status changes between the last listing and this one. */
  private _announce(jobs: IJob[]): void {
    const before = new Map(this.jobs.map(job => [job.uuid, job.job_status]));
    const changes = jobs
      .filter(job => before.has(job.uuid) && before.get(job.uuid) !== job.job_status)
      .map(job => `Job #${job.id} ${job.jupyter_file_name}: ${statusInfo(job.job_status).label}`);
    if (changes.length) {
      this.announcement = changes.join('. ');
    }
  }

  /** Keep the listing's queue; tell the outcome of each watched entry once. */
  private _updateQueue(entries: IQueuedEntry[]): void {
    this.queued = entries;
    for (const entry of entries) {
      if (isPending(entry.state)) {
        this._watched.add(entry.id);
      } else if (this._watched.has(entry.id) && !this._told.has(entry.id)) {
        this._told.add(entry.id);
        this._queueOutcome.emit(entry);
      }
    }
  }

  private _stopPolling(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  /** Follow the file browser to another folder. */
  setSourcesRoot(path: string): void {
    const root = path.replace(/^\/+|\/+$/g, '');
    if (root !== this.sourcesRoot || !this._sourcesListed) {
      this.sourcesRoot = root;
      void this.refreshSources();
    }
  }

  /** The notebooks under the current folder, a few levels deep, hidden folders skipped. */
  async refreshSources(): Promise<void> {
    const root = this.sourcesRoot;
    const generation = ++this._sourcesGeneration;
    this.sourcesLoading = true;
    this.emit();
    const found: string[] = [];
    let truncated = false;
    let error: string | null = null;
    try {
      const queue: { path: string; depth: number }[] = [{ path: root, depth: 0 }];
      let folders = 0;
      while (queue.length > 0) {
        const { path, depth } = queue.shift()!;
        folders += 1;
        const listing = await this._contents.get(path, { content: true });
        const items = (listing.content ?? []) as Contents.IModel[];
        const names = new Set(items.map(item => item.name));
        // before the configuration is known, the default name
        const outputs = this.status ? this.status.outputs_folder : 'manatee-outputs';
        for (const item of items) {
          if (item.name.startsWith('.')) {
            continue;
          }
          if (
            (item.type === 'directory' && outputs && item.name === outputs) ||
            names.has(`${item.name}.attestation.json`)
          ) {
            continue; // saved outputs (stage-2 results) are not things to submit
          }
          if (item.type === 'notebook' || item.name.endsWith('.ipynb')) {
            if (found.length >= SOURCE_LIMIT) {
              truncated = true;
            } else {
              found.push(item.path);
            }
          } else if (item.type === 'directory' && !SKIPPED_FOLDERS.has(item.name)) {
            if (depth + 1 <= SOURCE_DEPTH && folders + queue.length < FOLDER_LIMIT) {
              queue.push({ path: item.path, depth: depth + 1 });
            } else {
              truncated = true;
            }
          }
        }
      }
    } catch (e) {
      error = errorText(e);
    }
    if (generation !== this._sourcesGeneration) {
      return; // a newer listing started (the user moved on)
    }
    this._sourcesListed = true;
    this.sources = found.sort((a, b) => sourceKey(a).localeCompare(sourceKey(b)));
    this.sourcesTruncated = truncated;
    this.sourcesError = error;
    this.sourcesLoading = false;
    this.emit();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._stopPolling();
    void this.unwatchStatus();
    Signal.clearData(this);
  }

  private _contents: Contents.IManager;
  private _changed = new Signal<this, void>(this);
  private _queueOutcome = new Signal<this, IQueuedEntry>(this);
  /** Queue ids seen waiting in this page (their outcome is news to the user). */
  private _watched = new Set<string>();
  private _told = new Set<string>();
  private _isDisposed = false;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _statusTimer: ReturnType<typeof setTimeout> | null = null;
  private _statusWatched = false;
  private _statusCheck: Promise<void> | null = null;
  private _statusDelay = 0;
  private _jobsRequest: Promise<void> | null = null;
  private _jobsAgain = false;
  private _sourcesGeneration = 0;
  private _sourcesListed = false;
}

function isPending(state: string): boolean {
  return state === 'queued' || state === 'sending';
}

/** Shallow notebooks first, then by path. */
function sourceKey(path: string): string {
  const depth = path.split('/').length;
  return `${String(depth).padStart(3, '0')}/${path.toLowerCase()}`;
}

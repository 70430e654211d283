/**
 * The request layer: every call to the server extension's `manatee/*` routes.
 *
 * All requests go through JupyterLab's `ServerConnection` (base URL, token, XSRF header).
 * Replies are checked for the keys the panel reads; failures become `ManateeError`s that
 * carry the HTTP status and the server's `message` in words.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { statusTitle } from './format';
import { ILargestItem } from './largest';

/** One job as the API lists it (times are UTC without a zone). */
export interface IJob {
  id: number;
  uuid: string;
  creator: string;
  job_status: number;
  jupyter_file_name: string;
  created_at: string;
  updated_at: string;
  /** Added by the server extension once it saved this job's output. */
  output?: IOutputFacts | null;
  /** Added by the server extension for a Finished job once it scanned the output in the
   * background; null while unknown (not scanned yet, scan failed, output too large). */
  cells_raised?: ICellsRaised | null;
  /** True while the output waits for its scan or is being scanned: ask again. */
  cells_raised_pending?: boolean;
}

/** Which cells of a Finished job's output raised, as the job list carries it. */
export interface ICellsRaised {
  count: number;
  /** e.g. `ValueError: boom`; null when none raised. */
  first: string | null;
  /** The code cell (from 1) of the first. */
  first_cell: number | null;
}

/** Which cells of an executed notebook raised (they still end "Finished"). */
export interface ICellErrors {
  count: number | null;
  first: { cell: number; ename: string; evalue: string } | null;
}

export interface IOutputFacts {
  path: string;
  errors: ICellErrors | null;
  /** One sentence for a person; null when no cell raised. */
  errors_message?: string | null;
}

/** A submission held back until an earlier job of the creator has left status 0/1. */
export interface IQueuedEntry {
  id: string;
  notebook: string;
  path: string;
  state: 'queued' | 'sending' | 'sent' | 'failed' | string;
  created_at: string;
  waits_for?: { id?: number; uuid?: string; queue_id?: string } | null;
  /** The job's uuid once sent. */
  uuid?: string | null;
  /** Why it was not sent. */
  error?: string | null;
}

/** A submission the server is uploading now (it goes on after a page reload). */
export interface IUploadEntry {
  id: string;
  notebook: string;
  path: string;
  started_at: string;
}

export interface IJobPage {
  jobs: IJob[];
  total: number;
  /** The user's queued submissions and recent outcomes, oldest first. */
  queued: IQueuedEntry[];
  /** The user's submissions being uploaded now, oldest first. */
  submitting: IUploadEntry[];
}

export interface ISubmitReply {
  /** The job's uuid once sent; absent while queued. */
  uuid?: string;
  /** Queued behind an earlier job of the creator whose image build has not read its
   * workspace yet (the API keeps one workspace per creator). */
  queued?: boolean;
  queue_id?: string;
  waits_for?: { id?: number; uuid?: string; queue_id?: string } | null;
  file_count?: number;
  total_bytes?: number;
  excluded_count?: number;
  /** The API took the job, but something about it needs the user's attention (a job
   * uuid that is not canonical: no record kept, its attestation cannot be verified);
   * null when there is none. */
  warning: string | null;
}

export interface IManifest {
  notebook: string;
  folder: string;
  file_count: number;
  total_bytes: number;
  files: { path: string; size: number }[];
  files_truncated?: boolean;
  excluded: { path: string; reason: string }[];
  added: string[];
  /** What will not work in the TEE (e.g. code reading `../`), one sentence each. */
  warnings?: { path: string; cell: number; text: string; message: string }[];
  /** Past the server's large_workspace_size: the largest files and folders, each with the
   * line that leaves it out; empty otherwise. */
  largest?: ILargestItem[];
  /** The per-folder ignore file's name (`.manateeignore`). */
  ignore_file?: string;
}

export interface IOutputReply {
  /** The saved notebook's path from the contents root. */
  filename: string;
  path?: string;
  /** Added by attestation verification: the saved report beside the output. */
  attestation?: { path: string; verdict: string };
  errors?: ICellErrors | null;
  errors_message?: string | null;
}

export type CheckStatus = 'pass' | 'fail' | 'n/a';

export interface IVerification {
  verdict: string;
  verified: boolean;
  summary: string;
  checks: { name: string; status: CheckStatus | string; reason: string }[];
}

export interface IAttestationReply {
  token: string;
  kind: 'jwt' | 'mock' | 'unknown' | string;
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  nonce?: string;
  verification?: IVerification;
  /** `saved`: the file kept in the workspace was checked (offline); `api`: the API's copy. */
  source?: 'saved' | 'api' | string;
  /** The checked output and its `.attestation.json`, from the contents root. */
  path?: string | null;
  attestation_path?: string | null;
}

/** The creator name the API knew the user by before the safe mapping, and the new one. */
export interface ICreatorNotice {
  old: string;
  new: string;
}

export interface IManateeStatus {
  version?: string;
  configured: boolean;
  reachable: boolean | null;
  problem: string | null;
  api_url: string | null;
  creator: string | null;
  creator_problem: string | null;
  creator_warning?: string | null;
  /** creator_mapping 'safe' changed the creator: jobs of `old` are no longer listed. */
  creator_notice?: ICreatorNotice | null;
  max_workspace_size?: number;
  /** Jobs in progress plus queued submissions allowed per user (null: not counted here). */
  job_limit?: number | null;
  /** The folder beside a notebook that holds its saved outputs (never submitted). */
  outputs_folder?: string | null;
  queue_submissions?: boolean;
  /** While `./dev run` sets the local backend up (the API does not answer yet). */
  setting_up?: ISettingUp | null;
}

export interface ISettingUp {
  seconds_left: number;
  expected_seconds: number;
  elapsed_seconds: number;
}

/** A failed call: `status` is the HTTP status (0 when the server was not reached). */
export class ManateeError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string | null = null
  ) {
    super(message);
    this.name = 'ManateeError';
  }

  /** A short heading for the status (`Job limit reached`, ...). */
  get title(): string {
    return statusTitle(this.status);
  }
}

/** The error's message in words, for notifications and inline alerts. */
export function errorMessage(error: unknown): string {
  if (error instanceof ManateeError) {
    return error.message;
  }
  if (error instanceof Error && error.message) {
    return error.message;
  }
  return String(error);
}

/** `Job limit reached: You have reached ...` */
export function errorText(error: unknown): string {
  if (error instanceof ManateeError) {
    return `${error.title}: ${error.message}`;
  }
  return errorMessage(error);
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isJob(value: unknown): value is IJob {
  return (
    isObject(value) &&
    typeof value.id === 'number' &&
    typeof value.uuid === 'string' &&
    typeof value.job_status === 'number'
  );
}

function isUploadEntry(value: unknown): value is IUploadEntry {
  return isObject(value) && typeof value.id === 'string' && typeof value.notebook === 'string';
}

function isQueuedEntry(value: unknown): value is IQueuedEntry {
  return (
    isObject(value) &&
    typeof value.id === 'string' &&
    typeof value.notebook === 'string' &&
    typeof value.state === 'string'
  );
}

/** Newest first: by id, highest first (ids grow with submission time). */
export function newestFirst(jobs: readonly IJob[]): IJob[] {
  return [...jobs].sort((a, b) => b.id - a.id);
}

/** Calls the server extension; one instance per JupyterLab. */
export class ManateeApi {
  constructor(
    readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  /** `GET manatee/config`: configured? reachable? creator? (for the banner) */
  async status(): Promise<IManateeStatus> {
    const data = await this.request('config');
    if (typeof data.configured !== 'boolean') {
      throw this.malformed('config', data);
    }
    return data as unknown as IManateeStatus;
  }

  /** `DELETE manatee/config/creator-notice`: the user has read it; the server keeps that. */
  async dismissCreatorNotice(): Promise<void> {
    await this.request('config/creator-notice', 'DELETE');
  }

  /** `GET manatee/jobs?page=&page_size=`, newest first. */
  async listJobs(page = 1, pageSize = 10): Promise<IJobPage> {
    const query = URLExt.objectToQueryString({ page, page_size: pageSize });
    const data = await this.request(`jobs${query}`);
    const jobs = data.jobs;
    if (!Array.isArray(jobs) || !jobs.every(isJob) || typeof data.total !== 'number') {
      throw this.malformed('jobs', data);
    }
    const queued = Array.isArray(data.queued) ? data.queued.filter(isQueuedEntry) : [];
    const submitting = Array.isArray(data.submitting) ? data.submitting.filter(isUploadEntry) : [];
    return { jobs: newestFirst(jobs), total: data.total, queued, submitting };
  }

  /** `DELETE manatee/queue/<id>`: cancel a queued submission (its archive goes too). */
  async cancelQueued(id: string): Promise<void> {
    await this.request(`queue/${encodeURIComponent(id)}`, 'DELETE');
  }

  /** `POST manatee/manifest`: what submitting this notebook would ship. */
  async manifest(path: string): Promise<IManifest> {
    const data = await this.request('manifest', 'POST', submission(path));
    if (typeof data.file_count !== 'number' || !Array.isArray(data.excluded)) {
      throw this.malformed('manifest', data);
    }
    return data as unknown as IManifest;
  }

  /** `POST manatee/jobs`: archive the notebook's folder and submit it. */
  async submit(path: string): Promise<ISubmitReply> {
    const data = await this.request('jobs', 'POST', submission(path));
    const queued = data.queued === true && typeof data.queue_id === 'string';
    if (!queued && (typeof data.uuid !== 'string' || !data.uuid)) {
      throw this.malformed('jobs', data);
    }
    const warning = typeof data.warning === 'string' && data.warning ? data.warning : null;
    return { ...data, warning } as unknown as ISubmitReply;
  }

  /** `DELETE manatee/jobs/<uuid>`. */
  async deleteJob(uuid: string): Promise<void> {
    await this.request(`jobs/${encodeURIComponent(uuid)}`, 'DELETE');
  }

  /** `POST manatee/output`: save the executed notebook into the workspace. */
  async output(id: number): Promise<IOutputReply> {
    const data = await this.request('output', 'POST', { id });
    if (typeof data.filename !== 'string' || !data.filename) {
      throw this.malformed('output', data);
    }
    return data as unknown as IOutputReply;
  }

  /** `GET manatee/attestation?id=`: the token, decoded claims, verification if any. */
  async attestation(id: number): Promise<IAttestationReply> {
    const query = URLExt.objectToQueryString({ id });
    const data = await this.request(`attestation${query}`);
    if (typeof data.token !== 'string') {
      throw this.malformed('attestation', data);
    }
    return data as unknown as IAttestationReply;
  }

  /** `POST manatee/attestation/verify`: re-verify a saved output offline. */
  async verifySaved(path: string): Promise<IAttestationReply> {
    const data = await this.request('attestation/verify', 'POST', {
      path: path.replace(/^\/+/, '')
    });
    if (typeof data.token !== 'string') {
      throw this.malformed('attestation/verify', data);
    }
    return { source: 'saved', ...data } as unknown as IAttestationReply;
  }

  /** One JSON call; any failure is a `ManateeError` with a message a person can act on. */
  async request(route: string, method = 'GET', body?: unknown): Promise<Json> {
    const url = URLExt.join(this.serverSettings.baseUrl, 'manatee', route);
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'Content-Type': 'application/json' };
    }
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this.serverSettings);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new ManateeError(0, `The Jupyter server did not answer (${why}).`, 'NetworkError');
    }
    const text = await response.text();
    let data: unknown = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      throw fromErrorReply(response, data, text);
    }
    if (!isObject(data)) {
      throw new ManateeError(
        response.status,
        `The server answered manatee/${route} with something that is not JSON: ${snippet(text)}`,
        'BadReply'
      );
    }
    if (typeof data.code === 'number' && data.code !== 0) {
      const msg = typeof data.msg === 'string' && data.msg ? data.msg : `code ${data.code}`;
      throw new ManateeError(response.status, `The ManaTEE API refused: ${msg}`, 'ApiRefused');
    }
    return data;
  }

  private malformed(route: string, data: Json): ManateeError {
    return new ManateeError(
      200,
      `The server's reply to manatee/${route} lacks the expected fields: ` +
        snippet(JSON.stringify(data)),
      'BadReply'
    );
  }
}

function submission(path: string): { path: string; filename: string } {
  const clean = path.replace(/^\/+/, '');
  return { path: clean, filename: clean.split('/').pop() ?? clean };
}

function snippet(text: string, limit = 200): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (!flat) {
    return '(empty)';
  }
  return flat.length > limit ? `${flat.slice(0, limit)}…` : flat;
}

function fromErrorReply(response: Response, data: unknown, text: string): ManateeError {
  const status = response.status;
  let message = '';
  let reason: string | null = null;
  if (isObject(data)) {
    for (const key of ['message', 'msg']) {
      const value = data[key];
      if (typeof value === 'string' && value.trim()) {
        message = value.trim();
        break;
      }
    }
    reason = typeof data.reason === 'string' ? data.reason : null;
  }
  if (!message) {
    if (status === 404 && !isObject(data)) {
      message =
        'The jupyterlab_manatee server extension is not answering: is it installed and ' +
        'enabled (jupyter server extension list)?';
    } else {
      message = text ? snippet(text) : `HTTP ${status} ${response.statusText}`.trim();
    }
  }
  return new ManateeError(status, message, reason);
}

/**
 * The shield sidebar: a header with the configuration banner, then two sections,
 * Sources (notebooks to submit) and Jobs (newest first, with Output/Report/Delete).
 */

import { ReactWidget } from '@jupyterlab/apputils';
import {
  Button,
  PanelWithToolbar,
  SidePanel,
  closeIcon,
  deleteIcon,
  downloadIcon,
  fileIcon,
  notebookIcon,
  refreshIcon
} from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { AccordionPanel, Widget } from '@lumino/widgets';
import * as React from 'react';
import { ShieldActions } from './actions';
import { IJob, IQueuedEntry, IUploadEntry } from './api';
import {
  cellsRaisedText,
  creatorNoticeText,
  formatApiTime,
  formatLocalTime,
  formatUtc,
  mayHaveOutput,
  parseApiTime,
  plural,
  settingUpHeading,
  reachText,
  statusInfo
} from './format';
import { shieldIcon } from './icons';
import { SOURCE_DEPTH, SOURCE_LIMIT, ShieldModel, SubmitStage } from './model';

export const PANEL_ID = 'jp-manatee-shield';
/** On the body while the panel is shown in the right sidebar (toasts then stack beside). */
const TOASTS_BESIDE = 'jp-manatee-mod-toastsBeside';

/** A React view that re-renders whenever the model changes. */
abstract class ModelView extends ReactWidget {
  constructor(
    protected readonly model: ShieldModel,
    protected readonly actions: ShieldActions
  ) {
    super();
    model.changed.connect(this.update, this);
  }

  dispose(): void {
    this.model.changed.disconnect(this.update, this);
    super.dispose();
  }
}

// --- banner --------------------------------------------------------------------------

interface IBannerItem {
  key: string;
  heading: string;
  text: string;
}

/** What stops the panel from working, each with what to set. */
export function bannerItems(model: ShieldModel): IBannerItem[] {
  const items: IBannerItem[] = [];
  if (model.statusError) {
    items.push({
      key: 'status',
      heading: 'Cannot read the ManaTEE configuration',
      text: model.statusError
    });
  }
  const status = model.status;
  if (status) {
    if (!status.configured) {
      items.push({
        key: 'configured',
        heading: 'The ManaTEE API is not configured',
        text: `${sentence(
          status.problem ?? 'set DATA_CLEAN_ROOM_HOST or c.ManateeConfig.api_url'
        )}, then restart JupyterLab.`
      });
    } else if (status.reachable === false && status.setting_up) {
      items.push({
        key: 'setting-up',
        heading: settingUpHeading(status.setting_up),
        text:
          "The first start makes the stage-2 environment (the TEE image's packages); " +
          'this clears by itself once the backend answers.'
      });
    } else if (status.reachable === false) {
      items.push({
        key: 'reachable',
        heading: `The ManaTEE API${status.api_url ? ` at ${status.api_url}` : ''} is not reachable`,
        text: reachText(status.problem)
      });
    }
    if (status.creator_problem) {
      items.push({
        key: 'creator',
        heading: 'Your user name cannot be used as the ManaTEE creator',
        text: status.creator_problem
      });
    }
  }
  return items;
}

/** `ManaTEE API is not configured: set X` -> `Set X` (the heading already says it). */
function sentence(problem: string): string {
  const text = problem.replace(/^ManaTEE API is not configured:\s*/i, '').replace(/\.\s*$/, '');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

class HeaderView extends ModelView {
  constructor(model: ShieldModel, actions: ShieldActions) {
    super(model, actions);
    this.addClass('jp-manatee-Header');
  }

  render(): JSX.Element {
    const items = bannerItems(this.model);
    const status = this.model.status;
    return (
      <>
        <h2 className="jp-manatee-Header-title">ManaTEE</h2>
        {status && status.creator && (
          <p
            className="jp-manatee-Header-identity"
            title="The creator name the ManaTEE API sees for you"
          >
            Creator <code>{status.creator}</code>
          </p>
        )}
        {status && status.api_url && (
          <p className="jp-manatee-Header-identity" title="The ManaTEE API this server talks to">
            API <code>{status.api_url}</code>
          </p>
        )}
        {items.length > 0 && (
          <div className="jp-manatee-Banner" role="alert">
            {items.map(item => (
              <div key={item.key} className="jp-manatee-Banner-item" data-problem={item.key}>
                <strong className="jp-manatee-Banner-heading">{item.heading}</strong>
                <p className="jp-manatee-Banner-text">{item.text}</p>
              </div>
            ))}
          </div>
        )}
        {status?.creator_notice && (
          <div className="jp-manatee-Notice" role="status" data-notice="creator">
            <p className="jp-manatee-Notice-text">{creatorNoticeText(status.creator_notice)}</p>
            {this.model.creatorNoticeError && (
              <p className="jp-manatee-Notice-text">
                Could not dismiss this notice: {this.model.creatorNoticeError}
              </p>
            )}
            <button
              className="jp-mod-styled jp-mod-accept jp-manatee-Notice-dismiss"
              onClick={() => void this.model.dismissCreatorNotice()}
            >
              Got it
            </button>
          </div>
        )}
        {status?.creator_warning && !status.creator_problem && (
          <p className="jp-manatee-Header-warning">{status.creator_warning}</p>
        )}
      </>
    );
  }
}

// --- sources -------------------------------------------------------------------------

const STAGE_TEXT: Record<SubmitStage, string> = {
  checking: 'Checking what would be sent…',
  confirming: 'Waiting for your confirmation…',
  uploading: 'Packing and uploading the folder…'
};

function relativeTo(root: string, path: string): string {
  return root && path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path;
}

class SourcesView extends ModelView {
  constructor(model: ShieldModel, actions: ShieldActions) {
    super(model, actions);
    this.addClass('jp-manatee-Sources');
  }

  render(): JSX.Element {
    const m = this.model;
    const blocked = m.status !== null && !m.usable;
    return (
      <>
        <p className="jp-manatee-Sources-root">
          Notebooks under <code>/{m.sourcesRoot}</code>
          {m.sourcesLoading && <span className="jp-manatee-Muted"> (looking…)</span>}
        </p>
        {m.sourcesError && (
          <p className="jp-manatee-Error" role="alert">
            {m.sourcesError}
          </p>
        )}
        <ul className="jp-manatee-SourceList" aria-label="Notebooks you can submit">
          {m.sources.map(path => {
            const name = path.split('/').pop() ?? path;
            const stage = m.submitting.get(path);
            const error = m.submitErrors.get(path);
            return (
              <li key={path} className="jp-manatee-Source" data-path={path}>
                <div className="jp-manatee-Source-row">
                  <notebookIcon.react tag="span" className="jp-manatee-Source-icon" />
                  <span className="jp-manatee-Source-name" title={path}>
                    {relativeTo(m.sourcesRoot, path)}
                  </span>
                  <Button
                    small
                    className="jp-manatee-Source-submit"
                    disabled={stage !== undefined || blocked}
                    onClick={() => void this.actions.submit(path)}
                    title={
                      blocked
                        ? 'The ManaTEE API is not usable: see the message at the top'
                        : `Submit ${path} with its folder to ManaTEE (you confirm what is sent first)`
                    }
                    aria-label={`Submit ${name}`}
                  >
                    <shieldIcon.react tag="span" elementPosition="center" />
                    <span>Submit</span>
                  </Button>
                </div>
                {stage && (
                  <div className="jp-manatee-Progress" role="status">
                    {stage !== 'confirming' && (
                      <progress
                        aria-label={stage === 'checking' ? `Checking ${name}` : `Uploading ${name}`}
                      />
                    )}
                    <span>{STAGE_TEXT[stage]}</span>
                  </div>
                )}
                {error && !stage && (
                  <p className="jp-manatee-Error" role="alert">
                    {error}
                  </p>
                )}
              </li>
            );
          })}
        </ul>
        {!m.sourcesLoading && m.sources.length === 0 && !m.sourcesError && (
          <p className="jp-manatee-Empty">
            No notebooks here. Open a folder with a notebook in the file browser.
          </p>
        )}
        {m.sourcesTruncated && (
          <p className="jp-manatee-Muted">
            Only the first {SOURCE_LIMIT} notebooks, {SOURCE_DEPTH} folders deep, are listed: open a
            sub-folder in the file browser to see others.
          </p>
        )}
      </>
    );
  }
}

// --- jobs ----------------------------------------------------------------------------

export function StatusChip(props: { code: number }): JSX.Element {
  const info = statusInfo(props.code);
  return (
    <span
      className={`jp-manatee-Chip jp-mod-${info.kind}`}
      title={`${info.label}: ${info.description}`}
      data-status={info.code}
    >
      {info.inProgress && <span className="jp-manatee-Chip-pulse" aria-hidden="true" />}
      {info.label}
    </span>
  );
}

function JobTime(props: { label: string; value: string }): JSX.Element {
  const date = parseApiTime(props.value);
  return (
    <span className="jp-manatee-Job-time">
      {props.label}{' '}
      <time dateTime={date ? date.toISOString() : undefined} title={formatUtc(props.value)}>
        {formatApiTime(props.value, { seconds: false, year: 'auto' })}
      </time>
    </span>
  );
}

/** Why a queued submission waits, in words. */
export function waitsFor(entry: IQueuedEntry): string {
  const waits = entry.waits_for;
  if (waits && typeof waits.id === 'number') {
    return `waits for job #${waits.id}'s image build`;
  }
  return waits ? 'waits for an earlier queued submission' : 'waits for a free slot';
}

/** A submission the server holds back (one workspace per creator at the API). */
function QueuedItem(props: {
  entry: IQueuedEntry;
  cancelling: boolean;
  actions: ShieldActions;
}): JSX.Element {
  const { entry, cancelling, actions } = props;
  const failed = entry.state === 'failed';
  const sending = entry.state === 'sending';
  return (
    <li className="jp-manatee-Queued" data-queue-id={entry.id} data-state={entry.state}>
      <div className="jp-manatee-Job-head">
        <span className="jp-manatee-Job-name" title={entry.path}>
          {entry.notebook}
        </span>
        <span
          className={`jp-manatee-Chip jp-mod-${failed ? 'failed' : 'pending'}`}
          title={failed ? 'It was not sent to ManaTEE' : 'Not sent to ManaTEE yet'}
        >
          {failed ? 'Not sent' : sending ? 'Sending' : 'Queued'}
        </span>
      </div>
      <p className="jp-manatee-Queued-why">
        {failed
          ? `Not sent: ${entry.error || 'no reason was given'}`
          : sending
            ? 'Sending now…'
            : `Queued: ${waitsFor(entry)}`}
      </p>
      <div className="jp-manatee-Job-actions">
        <Button
          small
          minimal
          disabled={sending || cancelling}
          onClick={() => void actions.cancelQueued(entry)}
          title={
            failed ? 'Remove this entry' : 'Never send this submission (its archive is removed)'
          }
          aria-label={`${failed ? 'Dismiss' : 'Cancel'} queued ${entry.notebook}`}
        >
          <closeIcon.react tag="span" elementPosition="center" />
          <span>{cancelling ? 'Cancelling…' : failed ? 'Dismiss' : 'Cancel'}</span>
        </Button>
      </div>
    </li>
  );
}

/** A submission the server is uploading (also one sent from a page since reloaded). */
function UploadItem(props: { entry: IUploadEntry }): JSX.Element {
  const { entry } = props;
  return (
    <li className="jp-manatee-Upload" data-upload-id={entry.id} data-path={entry.path}>
      <div className="jp-manatee-Job-head">
        <span className="jp-manatee-Job-name" title={entry.path}>
          {entry.notebook}
        </span>
        <span className="jp-manatee-Chip jp-mod-pending" title="Not a job yet">
          Sending
        </span>
      </div>
      <p className="jp-manatee-Queued-why" role="status">
        <progress aria-label={`Submitting ${entry.notebook}`} /> Submitting {entry.notebook}…
      </p>
    </li>
  );
}

function JobItem(props: {
  job: IJob;
  busy?: string;
  problem?: string;
  actions: ShieldActions;
}): JSX.Element {
  const { job, busy, problem, actions } = props;
  const info = statusInfo(job.job_status);
  const ready = mayHaveOutput(job.job_status);
  const errorsText = cellsRaisedText(job);
  const notReady = info.inProgress
    ? 'The job is still in progress'
    : 'This job never ran, so there is no output or report';
  return (
    <li
      className="jp-manatee-Job"
      data-job-id={job.id}
      data-job-uuid={job.uuid}
      data-status={job.job_status}
    >
      <div className="jp-manatee-Job-head">
        <span className="jp-manatee-Job-name" title={job.jupyter_file_name}>
          {job.jupyter_file_name}
        </span>
        <StatusChip code={job.job_status} />
      </div>
      <div className="jp-manatee-Job-meta">
        <span title={`Job uuid ${job.uuid}`}>Job #{job.id}</span>
        <JobTime label="created" value={job.created_at} />
        <JobTime label="updated" value={job.updated_at} />
      </div>
      {errorsText && (
        <p
          className="jp-manatee-Job-errors"
          role="note"
          data-error-count={job.cells_raised?.count ?? job.output?.errors?.count}
        >
          {errorsText}
        </p>
      )}
      {problem && (
        <div className="jp-manatee-Job-problem" role="alert">
          <p>{problem}</p>
          <Button
            small
            minimal
            onClick={() => actions.dismissProblem(job)}
            title="Remove this message (trying the action again also does)"
            aria-label={`Dismiss the problem of job #${job.id}`}
          >
            <closeIcon.react tag="span" elementPosition="center" />
            <span>Dismiss</span>
          </Button>
        </div>
      )}
      <div className="jp-manatee-Job-actions">
        <Button
          small
          minimal
          disabled={!ready || busy !== undefined}
          onClick={() => void actions.output(job)}
          title={ready ? 'Save the executed notebook into your workspace and open it' : notReady}
          aria-label={`Output of job #${job.id}`}
        >
          <downloadIcon.react tag="span" elementPosition="center" />
          <span>{busy === 'output' ? 'Fetching…' : 'Output'}</span>
        </Button>
        <Button
          small
          minimal
          disabled={!ready || busy !== undefined}
          onClick={() => void actions.report(job)}
          title={ready ? 'Show the attestation report: what ran, and the proof' : notReady}
          aria-label={`Report of job #${job.id}`}
        >
          <fileIcon.react tag="span" elementPosition="center" />
          <span>{busy === 'report' ? 'Loading…' : 'Report'}</span>
        </Button>
        <Button
          small
          minimal
          disabled={busy !== undefined}
          onClick={() => void actions.delete(job)}
          title="Delete this job from ManaTEE (asks first)"
          aria-label={`Delete job #${job.id}`}
        >
          <deleteIcon.react tag="span" elementPosition="center" />
          <span>{busy === 'delete' ? 'Deleting…' : 'Delete'}</span>
        </Button>
      </div>
    </li>
  );
}

class JobsView extends ModelView {
  constructor(model: ShieldModel, actions: ShieldActions) {
    super(model, actions);
    this.addClass('jp-manatee-Jobs');
  }

  render(): JSX.Element {
    const m = this.model;
    // the banner already says why nothing works: do not repeat it here
    const blocked = m.status !== null && !m.usable;
    const refreshed = m.lastRefreshed
      ? formatLocalTime(m.lastRefreshed, { seconds: false, year: 'auto' })
      : null;
    return (
      <>
        {/* status changes only: the summary below changes on every refresh */}
        <div className="jp-manatee-Announce" role="status" aria-live="polite">
          {m.announcement}
        </div>
        <p className="jp-manatee-Jobs-summary">
          {m.jobsLoaded
            ? plural(m.total, 'job')
            : blocked
              ? 'Jobs appear here once the ManaTEE API can be used (see above).'
              : m.jobsError
                ? 'Cannot list the jobs.'
                : 'Loading jobs…'}
          {m.polling
            ? ` · refreshing every ${Math.round(m.pollInterval / 1000)} s while a job is in progress`
            : refreshed && m.jobsLoaded
              ? ` · updated ${refreshed}`
              : ''}
        </p>
        {m.jobsError && !blocked && (
          <p className="jp-manatee-Error" role="alert">
            {m.jobsError}
          </p>
        )}
        {m.uploads.length > 0 && (
          <ul className="jp-manatee-UploadList" aria-label="Submissions being sent">
            {m.uploads.map(entry => (
              <UploadItem key={entry.id} entry={entry} />
            ))}
          </ul>
        )}
        {(m.pendingQueue.length > 0 || m.failedQueue.length > 0) && (
          <ul className="jp-manatee-QueueList" aria-label="Queued submissions">
            {[...m.pendingQueue, ...m.failedQueue].map(entry => (
              <QueuedItem
                key={entry.id}
                entry={entry}
                cancelling={m.cancelling.has(entry.id)}
                actions={this.actions}
              />
            ))}
          </ul>
        )}
        <ul className="jp-manatee-JobList" aria-label="Jobs, newest first">
          {m.jobs.map(job => (
            <JobItem
              key={job.uuid}
              job={job}
              busy={m.busyJobs.get(job.uuid)}
              problem={m.jobProblems.get(job.uuid)}
              actions={this.actions}
            />
          ))}
        </ul>
        {m.jobsLoaded && m.jobs.length === 0 && !m.jobsError && (
          <p className="jp-manatee-Empty">No jobs yet: submit a notebook from Sources.</p>
        )}
        {m.total > m.pageSize && (
          <nav className="jp-manatee-Pager" aria-label="Job pages">
            <Button
              small
              minimal
              disabled={m.page <= 1 || m.jobsLoading}
              onClick={() => void m.setPage(m.page - 1)}
              title="Show newer jobs"
              aria-label="Newer jobs"
            >
              ‹ Newer
            </Button>
            <span className="jp-manatee-Pager-position">
              Page {m.page} of {m.pageCount}
            </span>
            <Button
              small
              minimal
              disabled={m.page >= m.pageCount || m.jobsLoading}
              onClick={() => void m.setPage(m.page + 1)}
              title="Show older jobs"
              aria-label="Older jobs"
            >
              Older ›
            </Button>
          </nav>
        )}
      </>
    );
  }
}

// --- the panel -----------------------------------------------------------------------

function section(id: string, label: string, view: Widget): PanelWithToolbar {
  const panel = new PanelWithToolbar();
  panel.id = id;
  panel.title.label = label;
  panel.addClass('jp-manatee-Section');
  panel.addWidget(view);
  return panel;
}

export class ShieldPanel extends SidePanel {
  constructor(
    readonly model: ShieldModel,
    readonly actions: ShieldActions
  ) {
    super();
    this.id = PANEL_ID;
    this.addClass('jp-manatee-ShieldPanel');
    this.title.icon = shieldIcon;
    this.title.caption = 'ManaTEE: submit notebooks to a trusted execution environment';
    this.node.setAttribute('aria-label', 'ManaTEE shield panel');
    this.node.tabIndex = -1;

    this.header.addWidget(new HeaderView(model, actions));
    // a plain button (JupyterLab's toolbar button sets aria-pressed, which a button that
    // does not toggle must not have)
    this.toolbar.addItem(
      'refresh-all',
      ReactWidget.create(
        <Button
          small
          minimal
          className="jp-manatee-Refresh"
          onClick={() => void model.refreshAll()}
          title="Check the configuration and refresh notebooks and jobs"
        >
          <refreshIcon.react tag="span" elementPosition="center" />
          <span>Refresh</span>
        </Button>
      )
    );
    // one refresh control (above); the sections refresh by themselves as things change
    this.addWidget(section('jp-manatee-sources', 'Sources', new SourcesView(model, actions)));
    this.addWidget(section('jp-manatee-jobs', 'Jobs', new JobsView(model, actions)));
    // Jobs get most of the height (they are what changes); the layout restorer then
    // restores what the user chose.
    if (this.content instanceof AccordionPanel) {
      this.content.setRelativeSizes([1, 2]);
    }
  }

  /**
   * The header above the sections grows and shrinks with its banner, which lumino does
   * not tell the accordion: without a re-layout the sections keep the height they had and
   * the Jobs list runs under the status bar (its pager unreachable).
   */
  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._resizeObserver.observe(this.content.node);
    window.addEventListener('resize', this._onWindowResize);
    // Attached while already shown (the layout restored with the panel open, its sidebar
    // attached after the panel became current): Lumino sends no after-show then, and the
    // panel would say "Loading jobs…" forever.
    if (this.isVisible) {
      this._shown();
    }
  }

  protected onAfterHide(msg: Message): void {
    void this.model.unwatchStatus();
    super.onAfterHide(msg);
    this._placeToasts();
  }

  /**
   * JupyterLab stacks its toasts in the bottom-right corner, over the right sidebar: while
   * this panel is shown there, they stack left of it instead (`--jp-manatee-toast-right`),
   * so however many are raised, the Jobs list stays clickable.
   */
  private _placeToasts(): void {
    const body = document.body;
    const viewport = document.documentElement.clientWidth;
    const left = this.node.getBoundingClientRect().left;
    const beside = this.isVisible && !this.isDisposed && left > viewport / 2;
    body.classList.toggle(TOASTS_BESIDE, beside);
    if (beside) {
      body.style.setProperty('--jp-manatee-toast-right', `${Math.ceil(viewport - left)}px`);
    }
  }

  protected onBeforeDetach(msg: Message): void {
    this._resizeObserver.unobserve(this.content.node);
    window.removeEventListener('resize', this._onWindowResize);
    super.onBeforeDetach(msg);
  }

  /** Opened by its tab, its command or its shortcut: focus goes into the panel. */
  protected onActivateRequest(msg: Message): void {
    super.onActivateRequest(msg);
    this.focusFirst();
  }

  /** Focus the panel's first control (or the panel itself). */
  focusFirst(): void {
    const first = this.node.querySelector<HTMLElement>(
      'button:not([disabled]), [tabindex="0"], a[href]'
    );
    (first ?? this.node).focus();
  }

  /** The first time the panel is shown, load everything; later, the moving parts. */
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._shown();
  }

  private _shown(): void {
    this._placeToasts();
    this.model.watchStatus();
    if (!this._loaded) {
      this._loaded = true;
      void this.model.refreshAll();
    } else {
      void this.model.refreshStatus();
      void this.model.refreshSources();
      void this.model.refreshJobs();
    }
  }

  dispose(): void {
    this._resizeObserver.disconnect();
    window.removeEventListener('resize', this._onWindowResize);
    document.body.classList.remove(TOASTS_BESIDE);
    this.model.dispose();
    super.dispose();
  }

  private _loaded = false;
  private _onWindowResize = () => this._placeToasts();
  private _resizeObserver = new ResizeObserver(() => {
    this.content.update();
    this._placeToasts();
  });
}

/**
 * What the buttons do: submit (manifest, confirm, upload, notify), fetch an output and
 * open it, show a report, delete a job. Every outcome is told to the user.
 */

import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import * as React from 'react';
import {
  IJob,
  IManifest,
  IQueuedEntry,
  ISubmitReply,
  ManateeError,
  errorMessage,
  errorText
} from './api';
import { ApiDownMessage, ErrorDetails, ManifestSummary, ReportView } from './dialogs';
import { giveFocusBack } from './focus';
import { formatBytes, plural } from './format';
import { ShieldModel } from './model';

/** Notifications cut messages at 140 characters: longer ones get a Details action. */
const NOTIFICATION_LIMIT = 140;
/** Success and information toasts close by themselves after this long (milliseconds). */
export const TOAST_MS = 5000;
/** Errors and warnings whose lasting trace is elsewhere (a job's card, a notebook's row,
 * the queue's list) are a short toast (milliseconds). */
export const SHORT_ERROR_MS = 8000;

function titleOf(error: unknown, fallback: string): string {
  return error instanceof ManateeError ? error.title : fallback;
}

/** Notification options with a Details button when the message would be cut. */
function detailsAction(title: string, message: string, shown: string): Notification.IAction[] {
  if (shown.length <= NOTIFICATION_LIMIT) {
    return [];
  }
  return [
    {
      label: 'Details',
      caption: 'Show the whole message',
      callback: () => {
        void showDialog({
          title,
          body: <ErrorDetails title={title} message={message} />,
          buttons: [Dialog.okButton({ label: 'Close' })]
        });
      }
    }
  ];
}

/** An error notification, with the full text one click away; it stays until dismissed
 * unless `autoClose` (milliseconds) says when it goes (its trace stays in the panel). */
export function notifyError(
  title: string,
  error: unknown,
  autoClose: number | false = false
): void {
  const message = errorMessage(error);
  const shown = `${title}: ${message}`;
  Notification.error(shown, {
    autoClose,
    actions: detailsAction(titleOf(error, title), message, shown)
  });
}

/** Why the API cannot take a submission now (not configured, not answering), or null. */
export function apiDown(
  model: ShieldModel
): { heading: string; problem: string; advice: string } | null {
  const status = model.status;
  if (!status) {
    return null; // the Jupyter server itself did not answer: the next call says so
  }
  const at = status.api_url ? ` at ${status.api_url}` : '';
  if (!status.configured) {
    return {
      heading: 'The ManaTEE API is not configured',
      problem: status.problem ?? 'no API URL is set',
      advice: 'Set DATA_CLEAN_ROOM_HOST (or c.ManateeConfig.api_url), then restart JupyterLab.'
    };
  }
  if (status.reachable === false) {
    const problem = status.problem ?? 'it did not answer its health check';
    return {
      heading: `The ManaTEE API${at} is not answering`,
      problem,
      advice: /Start the ManaTEE API/.test(problem)
        ? 'Nothing was sent. Submit again once the API answers (the message at the top of ' +
          'the panel goes away by itself).'
        : 'Nothing was sent. Check that the API is running and that DATA_CLEAN_ROOM_HOST ' +
          '(or c.ManateeConfig.api_url) points at it, then submit again.'
    };
  }
  return null;
}

export class ShieldActions {
  /** Where focus goes when the control that opened a dialog is gone (the panel sets it). */
  focusFallback: (() => void) | null = null;

  constructor(
    readonly model: ShieldModel,
    readonly docManager: IDocumentManager
  ) {
    model.queueOutcome.connect((_, entry) => this.tellQueueOutcome(entry));
  }

  /**
   * Submit a notebook: show the dry-run manifest, ask to confirm, save unsaved changes,
   * upload with a pending notification, then tell the job id or the error in words.
   */
  async submit(path: string): Promise<void> {
    const model = this.model;
    const name = path.split('/').pop() ?? path;
    const opener = document.activeElement;
    if (model.submitting.has(path)) {
      Notification.info(`${name} is already being submitted.`, { autoClose: TOAST_MS });
      return;
    }
    model.submitErrors.delete(path);
    model.submitting.set(path, 'checking');
    model.emit();
    try {
      // the job limit and whether the API answers are known before anything is asked:
      // count what is in flight now, and check the API (manatee/config probes its /health)
      await Promise.all([model.refreshJobs(), model.refreshStatus()]);
      const down = apiDown(model);
      if (down) {
        model.submitErrors.set(path, `${down.heading}: ${down.problem}`);
        await showDialog({
          title: `Cannot submit ${name}`,
          body: <ApiDownMessage {...down} />,
          buttons: [Dialog.okButton({ label: 'Close' })]
        });
        return;
      }
      const limit = model.status?.job_limit;
      if (typeof limit === 'number' && model.jobsInFlight >= limit) {
        Notification.warning(
          `Cannot submit ${name} yet: ${plural(model.jobsInFlight, 'job')} in progress or ` +
            `queued is the most ManaTEE allows; submit again when one has finished.`,
          { autoClose: 8000 }
        );
        return;
      }
      let manifest: IManifest;
      try {
        manifest = await model.api.manifest(path);
      } catch (error) {
        this._failed(path, `Cannot submit ${name}`, error);
        return;
      }
      const context = this._openContext(path);
      const dirty = context?.model.dirty ?? false;
      model.submitting.set(path, 'confirming');
      model.emit();
      const answer = await showDialog({
        title: `Submit ${name} to ManaTEE?`,
        body: (
          <ManifestSummary
            manifest={manifest}
            creator={model.status?.creator ?? null}
            dirty={dirty}
            queuedBehind={model.workspaceBlocker?.id ?? (model.pendingQueue.length ? 0 : null)}
          />
        ),
        buttons: [
          Dialog.cancelButton({ label: 'Cancel' }),
          Dialog.okButton({
            label: 'Submit',
            caption: `Send ${plural(manifest.file_count, 'file')} (${formatBytes(manifest.total_bytes)}) to ManaTEE`
          })
        ]
      });
      if (!answer.button.accept) {
        return;
      }
      if (dirty && context) {
        try {
          await context.save();
        } catch (error) {
          this._failed(path, `Cannot save ${name} before submitting it`, error);
          return;
        }
      }
      // The progress is the Sources row's (a status region); the outcome is one new
      // notification. Never an "Uploading ..." toast updated in place: JupyterLab's toast
      // layer asks react-toastify whether the toast is shown (`isActive`), which stays false
      // until React has rendered it (and, for a page's first toast, until react-toastify's
      // chunk has loaded); an update in that window re-creates the toast under the same id,
      // which react-toastify drops as a duplicate, and the spinner stays forever.
      model.submitting.set(path, 'uploading');
      model.emit();
      let reply: ISubmitReply;
      try {
        reply = await model.api.submit(path);
      } catch (error) {
        this._failed(path, `Cannot submit ${name}`, error);
        return;
      }
      if (reply.queued) {
        model.watchQueued(reply.queue_id!);
        const waits = reply.waits_for;
        const behind =
          waits && typeof waits.id === 'number'
            ? `job #${waits.id}'s image build`
            : 'an earlier queued submission';
        Notification.info(`Queued ${name}: waits for ${behind}; it is sent by itself after that`, {
          autoClose: TOAST_MS
        });
      }
      if (model.page !== 1) {
        await model.setPage(1);
      } else {
        await model.refreshJobs();
      }
      if (!reply.queued) {
        Notification.success(`Submitted ${name} as ${this._jobName(reply.uuid)}`, {
          autoClose: TOAST_MS
        });
      }
      if (reply.warning) {
        // the job stands, but its output and report will not be what the user expects:
        // kept on the job's card, a short toast, the whole text one click away
        if (reply.uuid) {
          model.jobProblems.set(reply.uuid, reply.warning);
          model.emit();
        }
        Notification.warning(reply.warning, {
          autoClose: SHORT_ERROR_MS,
          actions: detailsAction(`Submitted ${name}, with a warning`, reply.warning, reply.warning)
        });
      }
    } finally {
      model.submitting.delete(path);
      model.emit();
      await this.returnFocus(opener);
    }
  }

  /** Give focus back to the control that opened a dialog (see `giveFocusBack`). */
  async returnFocus(opener: Element | null): Promise<void> {
    await giveFocusBack(opener, this.focusFallback);
  }

  private _failed(path: string, title: string, error: unknown): void {
    if (error instanceof ManateeError && error.status === 409) {
      // transient (a job finishing lifts it): told once, gone by itself, nothing left inline
      Notification.warning(`${title}: ${errorMessage(error)}`, { autoClose: 8000 });
      return;
    }
    // kept under the notebook in Sources until the next try: the toast is short
    this.model.submitErrors.set(path, errorText(error));
    notifyError(title, error, SHORT_ERROR_MS);
  }

  private _openContext(path: string) {
    const widget = this.docManager.findWidget(path);
    return widget ? this.docManager.contextForWidget(widget) : undefined;
  }

  /** Save the executed notebook into the workspace and open it. */
  async output(job: IJob): Promise<void> {
    if (!this._start(job, 'output')) {
      return;
    }
    try {
      const reply = await this.model.api.output(job.id);
      await this.docManager.services.contents.get(reply.filename, { content: false });
      // Without a kernel: starting one rewrites the notebook's kernelspec and marks it
      // modified, and an autosave would then change the bytes its attestation proves.
      this.docManager.openOrReveal(reply.filename, undefined, undefined, undefined, {
        shouldStart: false,
        canStart: false
      });
      void this.model.refreshSources(); // the output is a notebook beside its source
      const report = reply.attestation
        ? ` Report: ${reply.attestation.path} (${reply.attestation.verdict}).`
        : '';
      const saved = `Saved the output of job #${job.id} as ${reply.filename}.`;
      if (reply.errors_message) {
        // the run "Finished", but its cells raised: the user must not take it for a result
        // (first, so the notification's first 140 characters carry it); the job's card
        // keeps saying it, so the toast is short
        const shown = `Job #${job.id} finished, but ${reply.errors_message}. ${saved}${report}`;
        Notification.warning(shown, {
          autoClose: SHORT_ERROR_MS,
          actions: detailsAction(`Job #${job.id}: cells raised`, shown, shown)
        });
      } else {
        Notification.success(`${saved}${report}`, { autoClose: TOAST_MS });
      }
      void this.model.refreshJobs(); // the card tells what the output holds
    } catch (error) {
      this._jobFailed(job, `Cannot fetch the output of job #${job.id}`, error);
    } finally {
      this._end(job);
    }
  }

  /** The attestation report in a dialog. */
  async report(job: IJob): Promise<void> {
    const opener = document.activeElement;
    if (!this._start(job, 'report')) {
      return;
    }
    let reply;
    try {
      reply = await this.model.api.attestation(job.id);
    } catch (error) {
      this._jobFailed(job, `Cannot read the report of job #${job.id}`, error);
      return;
    } finally {
      this._end(job);
    }
    await showDialog({
      title: `Attestation report: job #${job.id} (${job.jupyter_file_name})`,
      body: <ReportView job={job} report={reply} />,
      buttons: [Dialog.okButton({ label: 'Close' })]
    });
    await this.returnFocus(opener);
  }

  /** Re-verify a saved output against the token saved beside it (offline). */
  async verifyOutput(path: string): Promise<void> {
    const name = path.split('/').pop() ?? path;
    const opener = document.activeElement;
    let reply;
    try {
      reply = await this.model.api.verifySaved(path);
    } catch (error) {
      notifyError(`Cannot verify ${name}`, error);
      return;
    }
    await showDialog({
      title: `Attestation report: ${name}`,
      body: <ReportView job={null} report={reply} />,
      buttons: [Dialog.okButton({ label: 'Close' })]
    });
    await this.returnFocus(opener);
  }

  /** Cancel a queued submission: it is never sent, and its archive is removed. */
  async cancelQueued(entry: IQueuedEntry): Promise<void> {
    const model = this.model;
    if (model.cancelling.has(entry.id)) {
      return;
    }
    model.cancelling.add(entry.id);
    model.emit();
    try {
      await model.api.cancelQueued(entry.id);
      model.dropQueued(entry.id);
      if (entry.state !== 'failed') {
        Notification.info(`Cancelled the queued submission of ${entry.notebook}.`, {
          autoClose: TOAST_MS
        });
      }
    } catch (error) {
      notifyError(`Cannot cancel the queued submission of ${entry.notebook}`, error);
    } finally {
      model.cancelling.delete(entry.id);
      model.emit();
    }
    await model.refreshJobs();
  }

  /** A queued submission was sent, or could not be: say which, with the job or the error. */
  tellQueueOutcome(entry: IQueuedEntry): void {
    if (entry.state === 'sent') {
      Notification.success(
        `Sent ${entry.notebook} from the queue as ${this._jobName(entry.uuid)}`,
        { autoClose: TOAST_MS }
      );
    } else {
      // the entry stays in the Jobs list with its reason until dismissed
      notifyError(
        `The queued submission of ${entry.notebook} was not sent`,
        new ManateeError(0, entry.error || 'no reason was given'),
        SHORT_ERROR_MS
      );
    }
  }

  /** `job #7` once the list shows it (jobs are "#N" everywhere), else by uuid. */
  private _jobName(uuid: string | null | undefined): string {
    const job = this.model.jobs.find(j => j.uuid === uuid);
    return job ? `job #${job.id}` : `job ${uuid ?? '(no id given)'}`;
  }

  /** Delete a job after confirmation. */
  async delete(job: IJob): Promise<void> {
    const opener = document.activeElement;
    const answer = await showDialog({
      // destructive: Enter cancels
      defaultButton: 0,
      title: `Delete job #${job.id}?`,
      body:
        ([0, 1, 3, 4].includes(job.job_status)
          ? 'This job is still in progress: ManaTEE does not stop it, the run may go on. '
          : '') +
        `${job.jupyter_file_name} (job ${job.uuid}) leaves your job list. ManaTEE only ` +
        'marks it deleted: its stored output and report may remain there. Outputs ' +
        'already saved in your workspace stay.',
      buttons: [
        Dialog.cancelButton({ label: 'Cancel' }),
        Dialog.warnButton({ label: 'Delete', caption: `Delete job #${job.id}` })
      ]
    });
    if (!answer.button.accept || !this._start(job, 'delete')) {
      await this.returnFocus(opener);
      return;
    }
    try {
      await this.model.api.deleteJob(job.uuid);
      Notification.success(`Deleted job #${job.id} (${job.jupyter_file_name}).`, {
        autoClose: TOAST_MS
      });
    } catch (error) {
      this._jobFailed(job, `Cannot delete job #${job.id}`, error);
    } finally {
      this._end(job);
    }
    await this.model.refreshJobs();
    await this.returnFocus(opener);
  }

  /** An action on one job failed: the job's card says so until the next action on it,
   * and a short toast tells it now. */
  private _jobFailed(job: IJob, title: string, error: unknown): void {
    this.model.jobProblems.set(job.uuid, `${title}: ${errorMessage(error)}`);
    this.model.emit();
    notifyError(title, error, SHORT_ERROR_MS);
  }

  /** Forget a job's problem (its card's Dismiss). */
  dismissProblem(job: IJob): void {
    this.model.jobProblems.delete(job.uuid);
    this.model.emit();
  }

  private _start(job: IJob, action: 'output' | 'report' | 'delete'): boolean {
    if (this.model.busyJobs.has(job.uuid)) {
      return false;
    }
    this.model.jobProblems.delete(job.uuid);
    this.model.busyJobs.set(job.uuid, action);
    this.model.emit();
    return true;
  }

  private _end(job: IJob): void {
    this.model.busyJobs.delete(job.uuid);
    this.model.emit();
  }
}

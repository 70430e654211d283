/**
 * Dialog bodies: the dry-run manifest before a submission, and the attestation report.
 *
 * Everything from the server is rendered as text by React (escaped), never as HTML.
 */

import { Clipboard, Notification } from '@jupyterlab/apputils';
import {
  Button,
  LabIcon,
  checkIcon,
  circleEmptyIcon,
  copyIcon,
  errorIcon
} from '@jupyterlab/ui-components';
import * as React from 'react';
import { IAttestationReply, IJob, IManifest, IVerification } from './api';
import { formatBytes, formatEpochSeconds, localizeTimes, plural } from './format';
import { LargestItems } from './largest';
import { VerdictState, checkedWhat, stateWord, verdictState } from './verdict';

const VERDICT_ICONS: Record<VerdictState, LabIcon> = {
  verified: checkIcon,
  // neutral: nothing is wrong and nothing is proven (JupyterLab's info icon is a "?")
  local: circleEmptyIcon,
  failed: errorIcon
};

const EXCLUDED_SHOWN = 50;
const FILES_SHOWN = 200;

export interface IManifestProps {
  manifest: IManifest;
  creator: string | null;
  /** The notebook is open with unsaved changes: it is saved before sending. */
  dirty: boolean;
  /** The submission will be queued behind this job's image build (0: behind an earlier
   * queued submission); null when it is sent at once. */
  queuedBehind?: number | null;
}

/** What would be shipped: counts, size, what was left out and why. */
export function ManifestSummary(props: IManifestProps): JSX.Element {
  const { manifest, creator, dirty, queuedBehind } = props;
  const folder = manifest.folder ? <code>{manifest.folder}/</code> : 'the top folder';
  const excluded = manifest.excluded ?? [];
  const files = manifest.files ?? [];
  const added = manifest.added ?? [];
  return (
    <div className="jp-manatee-Manifest">
      <p className="jp-manatee-Manifest-summary">
        <strong>{manifest.notebook}</strong> and its folder ({folder}) will be sent to ManaTEE
        {creator ? ` as ${creator}` : ''}, built into an image and run in a trusted execution
        environment against the real data.
      </p>
      <dl className="jp-manatee-Manifest-counts">
        <dt>Files</dt>
        <dd data-manifest="file-count">{manifest.file_count}</dd>
        <dt>Total size</dt>
        <dd data-manifest="total-size">{formatBytes(manifest.total_bytes)}</dd>
        <dt>Excluded</dt>
        <dd data-manifest="excluded-count">{excluded.length}</dd>
      </dl>
      <LargestItems
        items={manifest.largest ?? []}
        totalBytes={manifest.total_bytes}
        ignoreFile={manifest.ignore_file || '.manateeignore'}
      />
      {(manifest.warnings ?? []).length > 0 && (
        <div className="jp-manatee-Manifest-warnings" role="note">
          <h3>Will not work in the TEE</h3>
          <ul>
            {(manifest.warnings ?? []).map((warning, index) => (
              <li key={`${warning.path}-${warning.cell}-${index}`} data-cell={warning.cell}>
                {warning.message}
              </li>
            ))}
          </ul>
        </div>
      )}
      {typeof queuedBehind === 'number' && (
        <p className="jp-manatee-Manifest-note" role="note" data-manifest="queued">
          It will be queued:{' '}
          {queuedBehind > 0
            ? `job #${queuedBehind}'s image build has not read its workspace yet`
            : 'an earlier submission is still queued'}{' '}
          (ManaTEE keeps one workspace per user); it is sent by itself after that.
        </p>
      )}
      {dirty && (
        <p className="jp-manatee-Manifest-note" role="note">
          The notebook has unsaved changes: it will be saved before it is sent.
        </p>
      )}
      {added.length > 0 && (
        <p className="jp-manatee-Manifest-note">
          Added for the TEE: {added.map(a => `${a}/`).join(', ')} (not in your folder).
        </p>
      )}
      {excluded.length > 0 && (
        <div className="jp-manatee-Manifest-excluded">
          <h3>Left out</h3>
          <table className="jp-manatee-Table">
            <thead>
              <tr>
                <th scope="col">Path</th>
                <th scope="col">Why</th>
              </tr>
            </thead>
            <tbody>
              {excluded.slice(0, EXCLUDED_SHOWN).map(item => (
                <tr key={item.path}>
                  <td>
                    <code>{item.path}</code>
                  </td>
                  <td>{item.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {excluded.length > EXCLUDED_SHOWN && (
            <p>and {plural(excluded.length - EXCLUDED_SHOWN, 'more path')}</p>
          )}
        </div>
      )}
      <details className="jp-manatee-Manifest-files">
        <summary>{plural(manifest.file_count, 'file')} to send</summary>
        {/* a scrolling list: focusable, so the keyboard can scroll it */}
        <ul tabIndex={0} aria-label="Files to send">
          {files.slice(0, FILES_SHOWN).map(file => (
            <li key={file.path}>
              <code>{file.path}</code> <span>({formatBytes(file.size)})</span>
            </li>
          ))}
        </ul>
        {(files.length > FILES_SHOWN || manifest.files_truncated) && (
          <p>and {plural(Math.max(0, manifest.file_count - FILES_SHOWN), 'more file')}</p>
        )}
      </details>
    </div>
  );
}

/** One row of the claims table: a dotted key and its value as text. */
export interface IClaimRow {
  key: string;
  value: string;
  /** The local time for epoch-second claims (`iat`, `exp`, `nbf`). */
  time?: string;
}

const TIME_CLAIMS = new Set(['iat', 'exp', 'nbf', 'auth_time']);

/** Nested claims flattened to `submods.container.image_digest` rows, in token order. */
export function flattenClaims(claims: Record<string, unknown>, prefix = ''): IClaimRow[] {
  const rows: IClaimRow[] = [];
  for (const [name, value] of Object.entries(claims)) {
    const key = prefix ? `${prefix}.${name}` : name;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const nested = flattenClaims(value as Record<string, unknown>, key);
      rows.push(...(nested.length ? nested : [{ key, value: '{}' }]));
    } else if (Array.isArray(value)) {
      const simple = value.every(v => v === null || typeof v !== 'object');
      rows.push({ key, value: simple ? value.map(String).join(', ') : JSON.stringify(value) });
    } else {
      const row: IClaimRow = { key, value: String(value) };
      if (TIME_CLAIMS.has(name)) {
        row.time = formatEpochSeconds(value) ?? undefined;
      }
      rows.push(row);
    }
  }
  return rows;
}

/**
 * The verdict first, in one of three looks told apart by icon and word (success, neutral,
 * error), then which file was checked, then every check.
 */
export function VerificationView(props: {
  verification: IVerification | undefined;
  checked: string;
}): JSX.Element {
  const { verification, checked } = props;
  const state = verdictState(verification);
  const Icon = VERDICT_ICONS[state];
  const checks = verification?.checks ?? [];
  const word = stateWord(state, verification?.verdict);
  return (
    <section
      className={`jp-manatee-Verdict jp-mod-${state}`}
      aria-labelledby="jp-manatee-verdict-title"
      data-state={state}
      data-verified={String(verification?.verified === true && state === 'verified')}
    >
      <h3 id="jp-manatee-verdict-title" className="jp-manatee-Verdict-title">
        {/* inline beside the words: centred on a line of its own it looked like a help button */}
        <Icon.react tag="span" className="jp-manatee-Verdict-icon" />
        {word && <span className="jp-manatee-Verdict-state">{word}</span>}
        {/* its first letter capitalized by the style when it leads the heading */}
        <span className="jp-manatee-Verdict-verdict">
          {verification ? verification.verdict : 'no verification came with this reply'}
        </span>
      </h3>
      {verification?.summary && (
        <p className="jp-manatee-Verdict-summary">{localizeTimes(verification.summary)}</p>
      )}
      <p className="jp-manatee-Verdict-checked">{checked}</p>
      {checks.length > 0 && (
        <table className="jp-manatee-Table jp-manatee-Checks">
          <thead>
            <tr>
              <th scope="col">Check</th>
              <th scope="col">Result</th>
              <th scope="col">Why</th>
            </tr>
          </thead>
          <tbody>
            {checks.map((check, index) => (
              <tr key={`${check.name}-${index}`} data-check={check.name}>
                <td>{check.name}</td>
                <td>
                  <span className={`jp-manatee-Check jp-mod-${checkClass(check.status)}`}>
                    {checkLabel(check.status)}
                  </span>
                </td>
                <td>{localizeTimes(check.reason)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function checkClass(status: string): string {
  return status === 'pass' ? 'pass' : status === 'fail' ? 'fail' : 'na';
}

function checkLabel(status: string): string {
  return status === 'pass' ? 'Pass' : status === 'fail' ? 'Fail' : 'N/A';
}

export interface IReportProps {
  /** The job, when the report is a job's (the context menu's has only a file). */
  job: IJob | null;
  report: IAttestationReply;
}

/** The attestation report: verdict (when verified), the decoded claims, the raw token. */
export function ReportView(props: IReportProps): JSX.Element {
  const { job, report } = props;
  const claims = report.claims && typeof report.claims === 'object' ? report.claims : null;
  const rows = claims ? flattenClaims(claims) : [];
  const header = report.header && typeof report.header === 'object' ? report.header : null;
  const copy = () => {
    Clipboard.copyToSystem(report.token);
    Notification.info('The attestation token was copied to the clipboard.', { autoClose: 3000 });
  };
  return (
    <div className="jp-manatee-Report" data-job-id={job?.id ?? ''}>
      <VerificationView verification={report.verification} checked={checkedWhat(report)} />
      <section aria-labelledby="jp-manatee-claims-title">
        <h3 id="jp-manatee-claims-title">
          {report.kind === 'jwt' ? 'Decoded claims' : 'Token contents'}
        </h3>
        {report.kind === 'jwt' && !report.verification && (
          <p className="jp-manatee-Report-note">
            Decoded for reading only: this panel has not checked the token's signature.
          </p>
        )}
        {report.kind === 'jwt' && rows.length > 0 && (
          <table className="jp-manatee-Table jp-manatee-Claims">
            <thead>
              <tr>
                <th scope="col">Claim</th>
                <th scope="col">Value</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(row => (
                <tr key={row.key} data-claim={row.key}>
                  <th scope="row">
                    <code>{row.key}</code>
                  </th>
                  <td>
                    <span className="jp-manatee-Claims-value">{row.value}</span>
                    {row.time && <span className="jp-manatee-Claims-time"> ({row.time})</span>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {report.kind === 'mock' && (
          <table className="jp-manatee-Table jp-manatee-Claims">
            <tbody>
              <tr data-claim="nonce">
                <th scope="row">
                  <code>nonce</code>
                </th>
                <td>
                  <span className="jp-manatee-Claims-value">{report.nonce ?? ''}</span>
                </td>
              </tr>
            </tbody>
          </table>
        )}
        {report.kind === 'mock' && (
          <p className="jp-manatee-Report-note">
            A mock token from a backend without a TEE: it proves nothing about the run.
          </p>
        )}
        {report.kind !== 'jwt' && report.kind !== 'mock' && (
          <p className="jp-manatee-Report-note">
            This token is neither a JWT nor a mock token; it is shown as it came.
          </p>
        )}
        {header && (
          <p className="jp-manatee-Report-header">
            Token header:{' '}
            {Object.entries(header)
              .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
              .join(', ')}
          </p>
        )}
      </section>
      <section aria-labelledby="jp-manatee-token-title" className="jp-manatee-Token">
        <div className="jp-manatee-Token-head">
          <h3 id="jp-manatee-token-title">Raw token</h3>
          <Button
            small
            minimal
            onClick={copy}
            title="Copy the raw attestation token to the clipboard"
            aria-label="Copy token"
            className="jp-manatee-Token-copy"
          >
            <copyIcon.react tag="span" elementPosition="center" />
            <span>Copy</span>
          </Button>
        </div>
        <pre className="jp-manatee-Token-text" tabIndex={0} aria-label="The raw token">
          {report.token}
        </pre>
      </section>
    </div>
  );
}

/** Why nothing can be submitted now, and what to do (instead of a confirm dialog). */
export function ApiDownMessage(props: {
  heading: string;
  problem: string;
  advice: string;
}): JSX.Element {
  return (
    <div className="jp-manatee-ApiDown" role="alert">
      <p>
        <strong className="jp-manatee-ApiDown-heading">{props.heading}</strong>:{' '}
        <span className="jp-manatee-ApiDown-problem">{props.problem}</span>
      </p>
      <p className="jp-manatee-ApiDown-advice">{props.advice}</p>
    </div>
  );
}

/** A message too long for a notification, in full. */
export function ErrorDetails(props: { title: string; message: string }): JSX.Element {
  return (
    <div className="jp-manatee-ErrorDetails">
      <p>
        <strong>{props.title}</strong>
      </p>
      <p>{props.message}</p>
    </div>
  );
}

/**
 * Pure formatting helpers: job statuses, API times, sizes, errors in words.
 *
 * Nothing here touches the DOM or JupyterLab, so it is unit tested directly.
 */

/** How a status looks and whether the job still moves. */
export type StatusKind = 'pending' | 'running' | 'done' | 'failed' | 'unknown';

export interface IStatusInfo {
  /** The status value from the API. */
  code: number;
  /** A short label for the chip. */
  label: string;
  /** A sentence for the chip's title (tooltip and screen readers). */
  description: string;
  kind: StatusKind;
  /** Still moving: the panel keeps refreshing while any listed job is. */
  inProgress: boolean;
}

const STATUSES: ReadonlyArray<Omit<IStatusInfo, 'code'>> = [
  {
    label: 'Created',
    description: 'Waiting to be picked up',
    kind: 'pending',
    inProgress: true
  },
  {
    label: 'Building image',
    description: 'Building the workload image',
    kind: 'running',
    inProgress: true
  },
  {
    label: 'Build failed',
    description: 'The workload image could not be built',
    kind: 'failed',
    inProgress: false
  },
  {
    label: 'Starting',
    description: 'Starting the executor in the TEE',
    kind: 'running',
    inProgress: true
  },
  {
    label: 'Running',
    description: 'The notebook is running in the TEE',
    kind: 'running',
    inProgress: true
  },
  {
    label: 'Finished',
    description: 'The executor stopped: fetch the output and its report',
    kind: 'done',
    inProgress: false
  },
  {
    label: 'Killed',
    description: 'The executor was killed',
    kind: 'failed',
    inProgress: false
  },
  {
    label: 'Failed',
    description: 'The executor failed or timed out',
    kind: 'failed',
    inProgress: false
  },
  {
    label: 'Unknown',
    description: 'The API does not know what happened to this job',
    kind: 'unknown',
    inProgress: false
  },
  {
    label: 'Launch failed',
    description: 'The executor could not be launched',
    kind: 'failed',
    inProgress: false
  }
];

/** The label, description and kind of a job status (every value 0..9, and others). */
export function statusInfo(code: number): IStatusInfo {
  const known = Number.isInteger(code) ? STATUSES[code] : undefined;
  if (known) {
    return { code, ...known };
  }
  return {
    code,
    label: `Status ${code}`,
    description: `A status this panel does not know (${code})`,
    kind: 'unknown',
    inProgress: false
  };
}

/** Whether a job with this status may still change (0, 1, 3, 4). */
export function isInProgress(code: number): boolean {
  return statusInfo(code).inProgress;
}

/** Whether an output or a report may exist: the executor ran and stopped. */
export function mayHaveOutput(code: number): boolean {
  return code === 5 || code === 6 || code === 7 || code === 8;
}

/** What a job card needs to say whether its cells raised. */
export interface IJobErrorFacts {
  job_status: number;
  cells_raised?: { count: number; first: string | null; first_cell: number | null } | null;
  output?: { errors_message?: string | null } | null;
}

/**
 * The card's line for a job that ended "Finished" although cells raised (the executor
 * runs with --allow-errors): from the server's background scan, else from the saved
 * output; null when no cell raised or it is not known yet.
 */
export function cellsRaisedText(job: IJobErrorFacts): string | null {
  const raised = job.cells_raised;
  if (job.job_status === 5 && raised && raised.count > 0) {
    const where = raised.first_cell ? ` (code cell ${raised.first_cell})` : '';
    const first = raised.first ? `; the first: ${raised.first}${where}` : '';
    return `Finished, but ${plural(raised.count, 'cell')} raised${first}`;
  }
  return job.output?.errors_message || null;
}

/** The banner's heading while `./dev run` sets the local backend up. */
export function settingUpHeading(settingUp: {
  seconds_left: number;
  expected_seconds: number;
}): string {
  return settingUp.seconds_left > 0
    ? `The local ManaTEE backend is being set up: about ${settingUp.seconds_left} s left`
    : 'The local ManaTEE backend is being set up: it takes longer than the ' +
        `${settingUp.expected_seconds} s expected`;
}

const API_TIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * Parse an API timestamp. The API writes `YYYY-MM-DD HH:MM:SS` in UTC without a zone;
 * an explicit zone, if one ever appears, is honoured. `null` for anything else.
 */
export function parseApiTime(text: string | null | undefined): Date | null {
  if (typeof text !== 'string') {
    return null;
  }
  const m = API_TIME_RE.exec(text.trim());
  if (!m) {
    return null;
  }
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  let iso = `${y}-${mo}-${d}T${h}:${mi}:${s}${frac ?? ''}`;
  if (!zone || zone === 'Z') {
    iso += 'Z';
  } else {
    iso += zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

export interface ITimeFormatOptions {
  /** IANA zone; the browser's own zone when absent. */
  timeZone?: string;
  /** BCP 47 locale; the browser's when absent. */
  locale?: string;
  /** Show seconds (default true); lists leave them to the title. */
  seconds?: boolean;
  /** Show the year: always (true, the default), never (false), or only when it is not
   * the current year in that zone ('auto'). */
  year?: boolean | 'auto';
}

/** A date and time in the user's zone, with the zone's short name. */
export function formatLocalTime(date: Date, options: ITimeFormatOptions = {}): string {
  let showYear = options.year !== false;
  if (options.year === 'auto') {
    const yearOf = (d: Date) =>
      new Intl.DateTimeFormat('en-US', { year: 'numeric', timeZone: options.timeZone }).format(d);
    showYear = yearOf(date) !== yearOf(new Date());
  }
  return new Intl.DateTimeFormat(options.locale, {
    year: showYear ? 'numeric' : undefined,
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: options.seconds === false ? undefined : '2-digit',
    timeZoneName: 'short',
    timeZone: options.timeZone
  }).format(date);
}

/**
 * An API timestamp shown in the user's time zone; the raw text when it cannot be read
 * (never "Invalid Date"), and an empty string when there is none.
 */
export function formatApiTime(
  text: string | null | undefined,
  options: ITimeFormatOptions = {}
): string {
  const date = parseApiTime(text);
  if (date === null) {
    return typeof text === 'string' ? text : '';
  }
  return formatLocalTime(date, options);
}

/** The exact UTC instant, for titles: `2026-01-15 12:30:00 UTC`. */
export function formatUtc(text: string | null | undefined): string {
  const date = parseApiTime(text);
  if (date === null) {
    return typeof text === 'string' ? text : '';
  }
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** `0 B`, `999 B`, `1.5 KB`, `12.3 MB`, `5.0 GB` (powers of 1024, one decimal). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) {
    return '?';
  }
  if (bytes < 1024) {
    return `${Math.round(bytes)} B`;
  }
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** `1 file`, `3 files`. */
export function plural(count: number, singular: string, pluralForm?: string): string {
  return `${count} ${count === 1 ? singular : (pluralForm ?? `${singular}s`)}`;
}

/** What an HTTP status from the manatee routes means, as a short heading. */
export function statusTitle(status: number): string {
  switch (status) {
    case 0:
      return 'Cannot reach the Jupyter server';
    case 400:
      return 'Refused';
    case 403:
      return 'Not allowed';
    case 404:
      return 'Not found';
    case 409:
      return 'Job limit reached';
    case 413:
      return 'Workspace too large';
    case 502:
      return 'ManaTEE API unreachable';
    case 503:
      return 'ManaTEE API not configured';
    case 504:
      return 'ManaTEE API timed out';
    default:
      return status >= 500 ? `Server error (${status})` : `Request failed (${status})`;
  }
}

/** Epoch seconds (JWT `iat`, `exp`, `nbf`) as a local time, or null when not one. */
export function formatEpochSeconds(
  value: unknown,
  options: ITimeFormatOptions = {}
): string | null {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    return null;
  }
  return formatLocalTime(new Date(value * 1000), options);
}

const UTC_TIME = /\b(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) UTC\b/g;

/**
 * The server's reasons name times as `2026-12-01 19:31:27 UTC` (right for the command
 * line); in the panel they are shown like every other time: the browser's zone, shown.
 */
export function localizeTimes(text: string, options: ITimeFormatOptions = {}): string {
  return text.replace(UTC_TIME, (match, day: string, time: string) => {
    const date = new Date(`${day}T${time}Z`);
    return Number.isNaN(date.getTime()) ? match : formatLocalTime(date, options);
  });
}

/** Why the job list no longer shows the jobs submitted under the old creator name. */
export function creatorNoticeText(notice: { old: string; new: string }): string {
  return (
    `You now submit as "${notice.new}" instead of "${notice.old}": the server maps user ` +
    'names to names the job images and TEE VMs accept. Jobs you submitted as ' +
    `"${notice.old}" are no longer listed here; they are still kept by the ManaTEE API ` +
    'under that name: ask your operator if you need them.'
  );
}

/** Why the API is not reachable and what to do, the advice once (the server's message
 * for a refused connection already says what to do). */
export function reachText(problem: string | null): string {
  const advice =
    'Check that the API is running and that DATA_CLEAN_ROOM_HOST ' +
    '(or c.ManateeConfig.api_url) points at it.';
  if (!problem) {
    return advice;
  }
  const why = problem.replace(/\.\s*$/, '');
  return /Start the ManaTEE API/.test(why) ? `${why}.` : `${why}. ${advice}`;
}

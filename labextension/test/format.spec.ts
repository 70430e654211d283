/**
 * Status chips, times in the user's zone, sizes: what the panel shows for API values.
 */

import {
  cellsRaisedText,
  creatorNoticeText,
  settingUpHeading,
  reachText,
  formatApiTime,
  formatBytes,
  formatEpochSeconds,
  formatUtc,
  localizeTimes,
  isInProgress,
  mayHaveOutput,
  parseApiTime,
  plural,
  statusInfo
} from '../src/format';

describe('statusInfo', () => {
  it.each([
    [0, 'Created', 'pending'],
    [1, 'Building image', 'running'],
    [2, 'Build failed', 'failed'],
    [3, 'Starting', 'running'],
    [4, 'Running', 'running'],
    [5, 'Finished', 'done'],
    [6, 'Killed', 'failed'],
    [7, 'Failed', 'failed'],
    [8, 'Unknown', 'unknown'],
    [9, 'Launch failed', 'failed']
  ])('labels status %i as %s (%s)', (code, label, kind) => {
    const info = statusInfo(code);
    expect(info.label).toBe(label);
    expect(info.kind).toBe(kind);
    expect(info.description.length).toBeGreaterThan(0);
  });

  it('labels a value outside 0..9 with the number instead of nothing', () => {
    expect(statusInfo(42).label).toBe('Status 42');
    expect(statusInfo(42).kind).toBe('unknown');
  });

  it('counts exactly 0, 1, 3 and 4 as in progress', () => {
    const moving = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 42].filter(isInProgress);
    expect(moving).toEqual([0, 1, 3, 4]);
  });

  it('offers outputs only where the executor ran and stopped', () => {
    const withOutput = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].filter(mayHaveOutput);
    expect(withOutput).toEqual([5, 6, 7, 8]);
  });
});

describe('API times', () => {
  it('reads the zoneless API time as UTC', () => {
    expect(parseApiTime('2026-01-15 12:30:05')?.toISOString()).toBe('2026-01-15T12:30:05.000Z');
  });

  it('honours an explicit zone when one is present', () => {
    expect(parseApiTime('2026-01-15T12:30:05+02:00')?.toISOString()).toBe(
      '2026-01-15T10:30:05.000Z'
    );
    expect(parseApiTime('2026-01-15T12:30:05Z')?.toISOString()).toBe('2026-01-15T12:30:05.000Z');
  });

  it('refuses text that is not a timestamp', () => {
    expect(parseApiTime('yesterday')).toBeNull();
    expect(parseApiTime('')).toBeNull();
    expect(parseApiTime(undefined)).toBeNull();
    expect(parseApiTime('2026-13-45 99:99:99')).toBeNull();
  });

  it('shows the time converted to the user zone, with the zone', () => {
    const tokyo = formatApiTime('2026-01-15 12:30:05', { timeZone: 'Asia/Tokyo', locale: 'en-GB' });
    expect(tokyo).toContain('21:30:05');
    expect(tokyo).toContain('15 Jan 2026');
    expect(tokyo).toMatch(/GMT\+9|JST/);
  });

  it('moves the date when the zone crosses midnight', () => {
    const newYork = formatApiTime('2026-01-15 02:00:00', {
      timeZone: 'America/New_York',
      locale: 'en-US'
    });
    expect(newYork).toContain('Jan 14, 2026');
    expect(newYork).toContain('09:00:00 PM');
    expect(newYork).toContain('EST');
  });

  it('shows unreadable times as they came rather than "Invalid Date"', () => {
    expect(formatApiTime('soon')).toBe('soon');
    expect(formatApiTime(null)).toBe('');
  });

  it('gives the exact UTC instant for titles', () => {
    expect(formatUtc('2026-01-15 12:30:05')).toBe('2026-01-15 12:30:05 UTC');
  });

  it('shows JWT epoch seconds as a local time and ignores other values', () => {
    expect(formatEpochSeconds(1768480205, { timeZone: 'UTC', locale: 'en-GB' })).toContain(
      '15 Jan 2026'
    );
    expect(formatEpochSeconds('1768480205')).toBeNull();
    expect(formatEpochSeconds(-1)).toBeNull();
  });
});

describe('sizes and counts', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1536, '1.5 KB'],
    [5 * 1024 ** 3, '5.0 GB'],
    [-1, '?']
  ])('formats %d bytes as %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it('says 1 file and 2 files', () => {
    expect(plural(1, 'file')).toBe('1 file');
    expect(plural(2, 'file')).toBe('2 files');
  });
});

describe('list times', () => {
  it('leaves the seconds out when asked (the title keeps the exact instant)', () => {
    const short = formatApiTime('2026-01-15 12:30:05', {
      timeZone: 'UTC',
      locale: 'en-GB',
      seconds: false
    });
    expect(short).toContain('12:30');
    expect(short).not.toContain('12:30:05');
  });
});

describe('years', () => {
  it('leaves out the current year when asked and keeps other years', () => {
    const thisYear = new Date().getUTCFullYear();
    const now = `${thisYear}-06-15 12:00:00`;
    const old = '2001-06-15 12:00:00';
    const options = { timeZone: 'UTC', locale: 'en-GB', year: 'auto' as const };
    expect(formatApiTime(now, options)).not.toContain(String(thisYear));
    expect(formatApiTime(old, options)).toContain('2001');
  });
});

describe('localizeTimes', () => {
  it("shows a reason's UTC times in the given zone, with the zone", () => {
    const text = localizeTimes('iat 2026-12-01 19:31:27 UTC is within the job window', {
      timeZone: 'Asia/Tokyo',
      locale: 'en-GB',
      year: true
    });
    expect(text).toMatch(/^iat 2 Dec 2026, 04:31:27 (GMT\+9|JST) is within the job window$/);
  });

  it('leaves text without such times alone', () => {
    expect(localizeTimes('nbf is not in the future')).toBe('nbf is not in the future');
  });
});

describe('a Finished job whose cells raised', () => {
  it('names the count and the first error from the background scan', () => {
    expect(
      cellsRaisedText({
        job_status: 5,
        cells_raised: { count: 2, first: 'ValueError: no bmi column', first_cell: 3 }
      })
    ).toBe('Finished, but 2 cells raised; the first: ValueError: no bmi column (code cell 3)');
  });

  it('says "1 cell" for one', () => {
    expect(
      cellsRaisedText({
        job_status: 5,
        cells_raised: { count: 1, first: 'KeyError', first_cell: 1 }
      })
    ).toBe('Finished, but 1 cell raised; the first: KeyError (code cell 1)');
  });

  it('says nothing for a clean run', () => {
    expect(
      cellsRaisedText({
        job_status: 5,
        cells_raised: { count: 0, first: null, first_cell: null }
      })
    ).toBeNull();
  });

  it('says nothing while the scan is unknown', () => {
    expect(cellsRaisedText({ job_status: 5, cells_raised: null })).toBeNull();
  });

  it('falls back to the saved output when the scan is unknown', () => {
    expect(
      cellsRaisedText({
        job_status: 5,
        cells_raised: null,
        output: { errors_message: 'cells were not checked for errors: the output is 20 MiB' }
      })
    ).toBe('cells were not checked for errors: the output is 20 MiB');
  });
});

describe('the banner while the local backend is being set up', () => {
  it('says how many seconds are left', () => {
    expect(settingUpHeading({ seconds_left: 17, expected_seconds: 25 })).toBe(
      'The local ManaTEE backend is being set up: about 17 s left'
    );
  });

  it('says when it takes longer than expected', () => {
    expect(settingUpHeading({ seconds_left: 0, expected_seconds: 25 })).toBe(
      'The local ManaTEE backend is being set up: it takes longer than the 25 s expected'
    );
  });
});

describe('creatorNoticeText', () => {
  it('names the old and the new creator and where the old jobs went', () => {
    const text = creatorNoticeText({ old: 'alice@example.org', new: 'alice-example-org-7a64ad' });
    expect(text).toBe(
      'You now submit as "alice-example-org-7a64ad" instead of "alice@example.org": the ' +
        'server maps user names to names the job images and TEE VMs accept. Jobs you ' +
        'submitted as "alice@example.org" are no longer listed here; they are still kept ' +
        'by the ManaTEE API under that name: ask your operator if you need them.'
    );
  });
});

describe('reachText', () => {
  it('gives the advice once when the problem already says what to do', () => {
    expect(
      reachText(
        'Cannot reach http://h:1 for /health: nothing is listening at h:1 (connection ' +
          'refused). Start the ManaTEE API (./dev run starts a local one), then try again.'
      )
    ).toBe(
      'Cannot reach http://h:1 for /health: nothing is listening at h:1 (connection ' +
        'refused). Start the ManaTEE API (./dev run starts a local one), then try again.'
    );
  });

  it('adds what to check to any other problem, with one full stop between', () => {
    expect(reachText('http://h:1 did not answer /health within 10 s.')).toBe(
      'http://h:1 did not answer /health within 10 s. Check that the API is running and ' +
        'that DATA_CLEAN_ROOM_HOST (or c.ManateeConfig.api_url) points at it.'
    );
  });
});

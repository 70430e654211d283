/**
 * The three verdict states: success, neutral, error. Anything unknown is an error.
 */

import { IVerification } from '../src/api';
import { VERDICT_LABELS, checkedWhat, stateWord, verdictState } from '../src/verdict';

function verification(
  verdict: string,
  verified: boolean,
  statuses: string[] = ['pass']
): IVerification {
  return {
    verdict,
    verified,
    summary: '',
    checks: statuses.map((status, i) => ({ name: `check${i}`, status, reason: '' }))
  };
}

describe('verdictState', () => {
  it.each([
    ['verified', true, ['pass', 'n/a'], 'verified'],
    ['verified (token expired)', true, ['pass'], 'verified'],
    ['local run, no hardware TEE', false, ['pass', 'n/a'], 'local'],
    ['mock backend, nothing attested', false, ['n/a'], 'local'],
    ['not verified', false, ['pass', 'fail'], 'failed']
  ])('draws the verdict %s (verified=%s) as %s', (verdict, verified, statuses, state) => {
    expect(verdictState(verification(verdict, verified, statuses))).toBe(state);
  });

  it('is failed when there is no verification at all', () => {
    expect(verdictState(undefined)).toBe('failed');
    expect(verdictState(null)).toBe('failed');
  });

  it('is failed for a verdict it does not know, even when marked verified', () => {
    expect(verdictState(verification('looks fine', true))).toBe('failed');
    expect(verdictState(verification('looks fine', false))).toBe('failed');
  });

  it('is failed when a check failed, whatever the verdict says', () => {
    expect(verdictState(verification('verified', true, ['pass', 'fail']))).toBe('failed');
    expect(verdictState(verification('local run, no hardware TEE', false, ['fail']))).toBe(
      'failed'
    );
  });

  it('is failed for a local verdict claiming to be verified', () => {
    expect(verdictState(verification('local run, no hardware TEE', true))).toBe('failed');
  });

  it('gives each state its own word', () => {
    expect(VERDICT_LABELS).toEqual({
      verified: 'Verified',
      local: 'Local run',
      failed: 'Not verified'
    });
  });
});

describe('checkedWhat', () => {
  it('names the saved file and its attestation record', () => {
    expect(
      checkedWhat({
        source: 'saved',
        path: 'work/out-3-a.ipynb',
        attestation_path: 'work/out-3-a.ipynb.attestation.json'
      })
    ).toBe('Checked work/out-3-a.ipynb against work/out-3-a.ipynb.attestation.json.');
  });

  it("says when ManaTEE's copy was checked instead", () => {
    expect(checkedWhat({ source: 'api', path: null, attestation_path: null })).toBe(
      "Checked ManaTEE's copy of the output (none is saved in your workspace)."
    );
  });
});

describe('stateWord', () => {
  it('is left out when the verdict already says it', () => {
    expect(stateWord('local', 'local run, no hardware TEE')).toBeNull();
    expect(stateWord('failed', 'not verified')).toBeNull();
  });

  it('leads a verdict that does not say it', () => {
    expect(stateWord('failed', 'signature does not match')).toBe('Not verified');
    expect(stateWord('failed', undefined)).toBe('Not verified');
  });
});

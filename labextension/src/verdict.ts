/**
 * The three verdict states a person tells apart at a glance: each has an icon and a word,
 * never colour alone. Fail closed: a reply without a verification, or with a verdict this
 * panel does not know, is "not verified".
 */

import { IVerification } from './api';

/** The token saved beside an output: `<output>.attestation.json`. */
export const ATTESTATION_SUFFIX = '.attestation.json';

export type VerdictState = 'verified' | 'local' | 'failed';

/** Verdicts of runs without a hardware TEE: nothing is wrong, and nothing is proven. */
const LOCAL_VERDICTS = new Set(['local run, no hardware TEE', 'mock backend, nothing attested']);

export function verdictState(verification: IVerification | null | undefined): VerdictState {
  if (!verification || typeof verification !== 'object') {
    return 'failed';
  }
  const checks = Array.isArray(verification.checks) ? verification.checks : [];
  if (checks.some(check => check.status === 'fail')) {
    return 'failed';
  }
  if (verification.verified === true && verification.verdict.startsWith('verified')) {
    return 'verified';
  }
  if (verification.verified === false && LOCAL_VERDICTS.has(verification.verdict)) {
    return 'local';
  }
  return 'failed';
}

/** The word shown beside the state's icon. */
export const VERDICT_LABELS: Record<VerdictState, string> = {
  verified: 'Verified',
  local: 'Local run',
  failed: 'Not verified'
};

/**
 * The state's word, unless the verdict already starts with it ("local run, no hardware
 * TEE" says "Local run"): the heading says the verdict once.
 */
export function stateWord(state: VerdictState, verdict: string | undefined): string | null {
  const label = VERDICT_LABELS[state];
  return verdict && verdict.toLowerCase().startsWith(label.toLowerCase()) ? null : label;
}

/** Which file the verdict is about, in words. */
export function checkedWhat(reply: {
  source?: string;
  path?: string | null;
  attestation_path?: string | null;
}): string {
  if (reply.source === 'saved' || (reply.path && reply.attestation_path)) {
    return `Checked ${reply.path} against ${reply.attestation_path}.`;
  }
  return "Checked ManaTEE's copy of the output (none is saved in your workspace).";
}

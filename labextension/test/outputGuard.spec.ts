/**
 * Run commands aimed at a saved output are stopped, with one answer for runs that come
 * together; everything else reaches the registry untouched.
 */

import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { IExecutor, guardRuns, isSavedOutput, targetWidgetId } from '../src/outputGuard';

class Registry implements IExecutor {
  ran: string[] = [];
  async execute(id: string, _args?: ReadonlyPartialJSONObject): Promise<unknown> {
    this.ran.push(id);
    return id;
  }
}

/** A guard whose current notebook is `current`, and the refusals it made. */
function guarded(current: string) {
  const registry = new Registry();
  const refused: string[] = [];
  let answer: () => void = () => undefined;
  const guard = guardRuns(
    registry,
    args => {
      const path = targetWidgetId(args) ?? current;
      return isSavedOutput(path) ? path : null;
    },
    output => {
      refused.push(output);
      return new Promise<void>(resolve => (answer = resolve));
    }
  );
  return { registry, refused, guard, answer: () => answer() };
}

describe('isSavedOutput', () => {
  it('knows the panel’s output names, in any folder', () => {
    expect(isSavedOutput('manatee-outputs/out-3-nb.ipynb')).toBe(true);
    expect(isSavedOutput('out-12-my notebook.IPYNB')).toBe(true);
  });

  it('leaves other notebooks alone', () => {
    expect(isSavedOutput('copy-of-output.ipynb')).toBe(false);
    expect(isSavedOutput('manatee-outputs/twin.ipynb')).toBe(false);
    expect(isSavedOutput('out-x-nb.ipynb')).toBe(false);
    expect(isSavedOutput('out-3-nb.ipynb.attestation.json')).toBe(false);
    expect(isSavedOutput('out-3-/nb.ipynb')).toBe(false);
  });
});

describe('targetWidgetId', () => {
  it('takes the cell toolbar’s widget, then the Run menu’s, else none', () => {
    expect(targetWidgetId({ widgetId: 'a', semanticWidget: 'b' })).toBe('a');
    expect(targetWidgetId({ semanticWidget: 'b' })).toBe('b');
    expect(targetWidgetId({ widgetId: '' })).toBeNull();
    expect(targetWidgetId(undefined)).toBeNull();
  });
});

describe('guardRuns', () => {
  it('stops a run in an output and asks once for runs that come together', async () => {
    const { registry, refused, answer } = guarded('out-3-nb.ipynb');
    const runs = [
      registry.execute('notebook:run-all-cells'),
      registry.execute('notebook:run-cell-and-select-next'),
      registry.execute('notebook:restart-run-all')
    ];
    expect(refused).toEqual(['out-3-nb.ipynb']);
    answer();
    await Promise.all(runs);
    expect(registry.ran).toEqual([]);

    void registry.execute('notebook:run-cell');
    expect(refused).toHaveLength(2); // answered: the next run asks again
  });

  it('lets runs in other notebooks, and other commands, through', async () => {
    const { registry, refused } = guarded('out-3-nb.ipynb');
    await registry.execute('notebook:run-cell', { widgetId: 'nb.ipynb' });
    await registry.execute('docmanager:save-as');
    await registry.execute('notebook:clear-all-cell-outputs');
    expect(registry.ran).toEqual([
      'notebook:run-cell',
      'docmanager:save-as',
      'notebook:clear-all-cell-outputs'
    ]);
    expect(refused).toEqual([]);
  });

  it('gives the registry its own execute back when disposed', async () => {
    const { registry, refused, guard } = guarded('out-3-nb.ipynb');
    guard.dispose();
    expect(guard.isDisposed).toBe(true);
    await registry.execute('notebook:run-all-cells');
    expect(registry.ran).toEqual(['notebook:run-all-cells']);
    expect(refused).toEqual([]);
  });
});

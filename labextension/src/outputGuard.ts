/**
 * Saved outputs are never run in place. JupyterLab runs cells of a notebook without a
 * kernel by asking for a kernel once per cell and clearing each code cell's outputs: in an
 * output that wipes the stage-2 results its attestation token covers. So the commands that
 * run cells are stopped before they reach the notebook, and one dialog offers a copy.
 *
 * Pure logic (no JupyterLab at run time): the dialog and the wiring are in index.ts.
 */

import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import type { IDisposable } from '@lumino/disposable';

/** `out-7-nb.ipynb`: an output saved by the panel (its bytes are what the token proves). */
export function isSavedOutput(path: string): boolean {
  const name = path.split('/').pop() ?? path;
  return /^out-\d+-.+\.ipynb$/i.test(name);
}

/**
 * The commands that run a notebook's cells (JupyterLab 4.6). Keyboard shortcuts, toolbar
 * buttons and menus all call `commands.execute`; the Run menu's items (`runmenu:run`,
 * `runmenu:run-all`, ...) are semantic commands that execute one of these in turn, for the
 * current widget only, so a console's Run stays untouched.
 */
export const RUN_COMMANDS: ReadonlySet<string> = new Set([
  'notebook:run-cell',
  'notebook:run-cell-and-select-next',
  'notebook:run-cell-and-insert-below',
  'notebook:run-all-cells',
  'notebook:run-all-above',
  'notebook:run-all-below',
  'notebook:restart-run-all',
  'notebook:restart-and-run-to-selected',
  'notebook:run-in-console',
  'toc:run-cells'
]);

/**
 * The id of the notebook widget a notebook command names, as JupyterLab's own commands
 * pick it: a cell toolbar's `widgetId`, then a semantic command's `semanticWidget`; null
 * means the tracker's current notebook.
 */
export function targetWidgetId(args: ReadonlyPartialJSONObject | undefined): string | null {
  for (const key of ['widgetId', 'semanticWidget']) {
    const value = args?.[key];
    if (typeof value === 'string' && value) {
      return value;
    }
  }
  return null;
}

/** The part of Lumino's CommandRegistry the guard replaces. */
export interface IExecutor {
  execute(id: string, args?: ReadonlyPartialJSONObject): Promise<unknown>;
}

/**
 * Stop run commands aimed at a saved output. Lumino's CommandRegistry has no hook before a
 * command runs, so `execute` is replaced on this instance (every caller goes through it).
 *
 * @param outputOf - the saved output a command with these args would run, else null.
 * @param refuse - explain, offer a copy; resolves once the person has answered. While it
 *   is open, further runs share it (a Run All runs cells concurrently; keys repeat).
 * @returns Disposing restores the registry's own `execute`.
 */
export function guardRuns<T>(
  commands: IExecutor,
  outputOf: (args: ReadonlyPartialJSONObject | undefined) => T | null,
  refuse: (output: T) => Promise<void>
): IDisposable {
  const original = commands.execute;
  let open: Promise<void> | null = null;
  const guarded = function (
    this: IExecutor,
    id: string,
    args?: ReadonlyPartialJSONObject
  ): Promise<unknown> {
    if (RUN_COMMANDS.has(id)) {
      const output = outputOf(args);
      if (output !== null) {
        if (open === null) {
          open = refuse(output).finally(() => {
            open = null;
          });
        }
        return open.then(() => undefined);
      }
    }
    return original.call(this, id, args);
  };
  commands.execute = guarded;
  let disposed = false;
  return {
    get isDisposed() {
      return disposed;
    },
    dispose() {
      if (!disposed) {
        disposed = true;
        if (commands.execute === guarded) {
          commands.execute = original;
        }
      }
    }
  };
}

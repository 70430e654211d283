/**
 * jupyterlab-manatee: the shield sidebar, the Submit commands (panel, notebook toolbar,
 * file browser context menu) and the wiring to the file browser and document manager.
 */

import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  ISessionContext,
  Notification,
  ToolbarButton,
  showDialog
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookModel, INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';
import { ShieldActions } from './actions';
import { guardRuns, isSavedOutput, targetWidgetId } from './outputGuard';
import { ATTESTATION_SUFFIX } from './verdict';
import { ManateeApi } from './api';
import { shieldIcon } from './icons';
import { ShieldModel } from './model';
import { PANEL_ID, ShieldPanel } from './panel';

export namespace CommandIDs {
  export const open = 'manatee:open';
  export const submit = 'manatee:submit';
  export const submitSelected = 'manatee:submit-selected';
  export const refresh = 'manatee:refresh';
  export const verifyOutput = 'manatee:verify-output';
}

const PLUGIN_ID = 'jupyterlab-manatee:plugin';

function isNotebookPath(path: string | undefined): path is string {
  return typeof path === 'string' && path.toLowerCase().endsWith('.ipynb');
}

/** The Submit button of every notebook's toolbar. */
class SubmitButtonExtension implements DocumentRegistry.IWidgetExtension<
  NotebookPanel,
  INotebookModel
> {
  constructor(private app: JupyterFrontEnd) {}

  createNew(panel: NotebookPanel, context: DocumentRegistry.IContext<INotebookModel>): IDisposable {
    const button = new ToolbarButton({
      className: 'jp-manatee-NotebookSubmit',
      icon: shieldIcon,
      label: 'Submit',
      tooltip: 'Submit this notebook to ManaTEE (you confirm what is sent first)',
      onClick: () => {
        void this.app.commands.execute(CommandIDs.submit, { path: context.path });
      }
    });
    panel.toolbar.insertItem(10, 'manatee-submit', button);
    return button;
  }
}

/**
 * Saved outputs never get a kernel, however they are opened (the panel, the file browser,
 * JupyterLab restoring its layout after a reload): a kernel would rewrite the kernelspec,
 * and one Run All would replace the stage-2 results with stage-1 ones, breaking the proof.
 * Set here, before the document's session starts; a document renamed out of the output
 * name pattern is an ordinary notebook again, so its own preference comes back.
 */
class KernelLessOutputs implements DocumentRegistry.IWidgetExtension<
  NotebookPanel,
  INotebookModel
> {
  createNew(_: NotebookPanel, context: DocumentRegistry.IContext<INotebookModel>): IDisposable {
    type Starting = Pick<
      ISessionContext.IKernelPreference,
      'shouldStart' | 'canStart' | 'autoStartDefault'
    >;
    let normal: Starting | null = null; // what it was before the path became an output's
    const keep = () => {
      const preference = context.sessionContext.kernelPreference;
      if (isSavedOutput(context.path)) {
        if (normal === null) {
          const { shouldStart, canStart, autoStartDefault } = preference;
          normal = { shouldStart, canStart, autoStartDefault };
        }
        context.sessionContext.kernelPreference = {
          ...preference,
          shouldStart: false,
          canStart: false,
          autoStartDefault: false
        };
      } else if (normal !== null) {
        context.sessionContext.kernelPreference = { ...preference, ...normal };
        normal = null;
      }
    };
    keep();
    context.pathChanged.connect(keep);
    return new DisposableDelegate(() => context.pathChanged.disconnect(keep));
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'The ManaTEE shield sidebar: submit notebooks to a TEE, follow jobs, fetch outputs.',
  autoStart: true,
  requires: [IDocumentManager, IDefaultFileBrowser],
  optional: [ILayoutRestorer, ICommandPalette, INotebookTracker],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager,
    browser: IDefaultFileBrowser,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    notebooks: INotebookTracker | null
  ) => {
    const api = new ManateeApi(app.serviceManager.serverSettings);
    const model = new ShieldModel({ api, contents: app.serviceManager.contents });
    const actions = new ShieldActions(model, docManager);
    const panel = new ShieldPanel(model, actions);
    actions.focusFallback = () => panel.focusFirst();

    // Follow the file browser: its folder tree is what Sources lists.
    model.sourcesRoot = browser.model.path;
    browser.model.pathChanged.connect(() => model.setSourcesRoot(browser.model.path));
    let pending: ReturnType<typeof setTimeout> | null = null;
    app.serviceManager.contents.fileChanged.connect((_, change) => {
      const paths = [change.oldValue?.path, change.newValue?.path];
      const root = model.sourcesRoot;
      if (!paths.some(p => typeof p === 'string' && (root === '' || p.startsWith(root)))) {
        return;
      }
      if (pending === null && panel.isVisible) {
        pending = setTimeout(() => {
          pending = null;
          void model.refreshSources();
        }, 500);
      }
    });

    app.shell.add(panel, 'right', { rank: 650 });
    if (restorer) {
      restorer.add(panel, 'jupyterlab-manatee:shield');
    }

    const submitPath = (path: string) => {
      app.shell.activateById(PANEL_ID);
      void actions.submit(path.replace(/^\/+/, ''));
    };

    app.commands.addCommand(CommandIDs.open, {
      label: 'Open the ManaTEE Shield Panel',
      caption: 'Submit notebooks to ManaTEE and follow their jobs',
      icon: shieldIcon,
      execute: () => app.shell.activateById(PANEL_ID)
    });

    app.commands.addCommand(CommandIDs.submit, {
      label: args =>
        args.path ? `Submit ${args.path} to ManaTEE…` : 'Submit Notebook to ManaTEE…',
      caption: 'Show what would be sent, then submit the notebook with its folder',
      icon: shieldIcon,
      execute: args => {
        const path = (args.path as string | undefined) ?? notebooks?.currentWidget?.context.path;
        if (!isNotebookPath(path)) {
          Notification.warning('Open or select a notebook (.ipynb) to submit it to ManaTEE.', {
            autoClose: 5000
          });
          return;
        }
        submitPath(path);
      }
    });

    app.commands.addCommand(CommandIDs.submitSelected, {
      label: 'Submit to ManaTEE…',
      caption: 'Show what would be sent, then submit the notebook with its folder',
      icon: shieldIcon,
      isVisible: () => {
        const item = browser.selectedItems().next();
        return !item.done && isNotebookPath(item.value?.path);
      },
      execute: () => {
        for (const item of browser.selectedItems()) {
          if (isNotebookPath(item.path)) {
            submitPath(item.path);
            return;
          }
        }
      }
    });

    // An output saved by the panel has its token beside it: `<output>.attestation.json`.
    const selectedOutput = (): string | null => {
      const item = browser.selectedItems().next();
      if (item.done || !isNotebookPath(item.value?.path)) {
        return null;
      }
      const record = `${item.value.path}${ATTESTATION_SUFFIX}`;
      for (const sibling of browser.model.items()) {
        if (sibling.path === record) {
          return item.value.path;
        }
      }
      return null;
    };

    app.commands.addCommand(CommandIDs.verifyOutput, {
      label: 'Verify ManaTEE output',
      caption: 'Check this saved output against the attestation token saved beside it',
      icon: shieldIcon,
      isVisible: () => selectedOutput() !== null,
      execute: args => {
        const path = (args.path as string | undefined) ?? selectedOutput();
        if (path) {
          void actions.verifyOutput(path.replace(/^\/+/, ''));
        }
      }
    });

    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh the ManaTEE Shield Panel',
      icon: shieldIcon,
      execute: () => model.refreshAll()
    });

    app.contextMenu.addItem({
      command: CommandIDs.submitSelected,
      selector: '.jp-DirListing-item[data-file-type="notebook"]',
      rank: 4
    });
    app.contextMenu.addItem({
      command: CommandIDs.verifyOutput,
      selector: '.jp-DirListing-item[data-file-type="notebook"]',
      rank: 5
    });

    app.docRegistry.addWidgetExtension('Notebook', new SubmitButtonExtension(app));
    app.docRegistry.addWidgetExtension('Notebook', new KernelLessOutputs());
    if (notebooks) {
      guardRuns(
        app.commands,
        args => {
          const id = targetWidgetId(args);
          const panel = id ? notebooks.find(w => w.id === id) : notebooks.currentWidget;
          return panel && isSavedOutput(panel.context.path) ? panel : null;
        },
        async panel => {
          const name = PathExt.basename(panel.context.path);
          const result = await showDialog({
            title: 'Run a copy instead',
            body:
              `${name} is a ManaTEE output: its results came from the TEE and its ` +
              'attestation token covers them as they are. Save a copy to run it.',
            buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Save a copy…' })],
            defaultButton: 0 // a repeated Shift+Enter lands here: it must not go on
          });
          if (result.button.accept && !panel.isDisposed) {
            app.shell.activateById(panel.id); // Save As acts on the current document
            await app.commands.execute('docmanager:save-as');
          }
        }
      );
    }

    if (palette) {
      const category = 'ManaTEE';
      palette.addItem({ command: CommandIDs.open, category });
      palette.addItem({ command: CommandIDs.submit, category });
      palette.addItem({ command: CommandIDs.refresh, category });
    }
  }
};

export default plugin;

/**
 * Focus back to the control that opened a dialog once the panel has redrawn it: the
 * control is disabled while its action runs (which drops focus to the page), and the
 * panel re-enables it when it draws the model's change, one frame later on a quiet
 * machine, several on a busy one.
 */

/** What `giveFocusBack` needs of an element (an `HTMLElement` has it). */
export interface IFocusable {
  readonly isConnected: boolean;
  hasAttribute(name: string): boolean;
  focus(): void;
}

/** The page, as `giveFocusBack` sees it (the browser's by default; tests pass their own). */
export interface IFocusPage {
  /** The element that has focus (`document.activeElement`). */
  active(): unknown;
  /** What has focus when nothing does (`document.body`). */
  readonly body: unknown;
  /** Resolves after the next drawn frame. */
  frame(): Promise<void>;
  /** Milliseconds, monotonic. */
  now(): number;
}

/** How long a disabled opener is waited for before focus goes to the fallback. */
export const FOCUS_WAIT_MS = 5000;

function browserPage(): IFocusPage {
  return {
    active: () => document.activeElement,
    body: document.body,
    frame: () => new Promise(resolve => requestAnimationFrame(() => setTimeout(resolve, 0))),
    now: () => performance.now()
  };
}

function focusable(element: unknown): element is IFocusable {
  return (
    typeof element === 'object' &&
    element !== null &&
    typeof (element as IFocusable).focus === 'function' &&
    typeof (element as IFocusable).hasAttribute === 'function'
  );
}

/**
 * Give focus back to ``opener`` once it is enabled again, or to ``fallback`` when it is
 * gone or still disabled after `FOCUS_WAIT_MS`; nothing when the user has moved on.
 */
export async function giveFocusBack(
  opener: unknown,
  fallback: (() => void) | null,
  page: IFocusPage = browserPage(),
  limit: number = FOCUS_WAIT_MS
): Promise<void> {
  const target = focusable(opener) && opener !== page.body ? opener : null;
  const end = page.now() + limit;
  await page.frame();
  while (target && target.isConnected && target.hasAttribute('disabled') && page.now() < end) {
    await page.frame();
  }
  const active = page.active();
  if (active && active !== page.body && active !== opener) {
    return; // the user has moved on
  }
  if (target && target.isConnected && !target.hasAttribute('disabled')) {
    target.focus();
  } else if (fallback) {
    fallback();
  }
}

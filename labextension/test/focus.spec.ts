/**
 * Focus goes back to the control that opened a dialog once the panel has re-enabled it,
 * however many frames that takes on a busy machine.
 */

import { IFocusPage, giveFocusBack } from '../src/focus';

class Button {
  disabled = true;
  isConnected = true;
  focused = false;
  hasAttribute(name: string): boolean {
    return name === 'disabled' && this.disabled;
  }
  focus(): void {
    this.focused = true;
  }
}

/** A page whose frames are counted; ``onFrame`` runs at each (the panel drawing). */
function page(onFrame: (frame: number) => void, active: () => unknown = () => BODY): IFocusPage {
  let frames = 0;
  return {
    active,
    body: BODY,
    frame: async () => {
      frames += 1;
      onFrame(frames);
    },
    now: () => frames * 100 // each frame 100 ms: 50 frames make FOCUS_WAIT_MS
  };
}

const BODY = { name: 'body' };

describe('giveFocusBack', () => {
  it('focuses the opener enabled again at the first frame', async () => {
    const opener = new Button();
    await giveFocusBack(
      opener,
      null,
      page(() => (opener.disabled = false))
    );
    expect(opener.focused).toBe(true);
  });

  it('waits for an opener the panel re-enables only at the tenth frame', async () => {
    const opener = new Button();
    const fallback = jest.fn();
    await giveFocusBack(
      opener,
      fallback,
      page(frame => (opener.disabled = frame < 10))
    );
    expect(opener.focused).toBe(true);
    expect(fallback).not.toHaveBeenCalled();
  });

  it('gives up on an opener still disabled after five seconds: focus goes to the fallback', async () => {
    const opener = new Button();
    const frames: number[] = [];
    const fallback = jest.fn();
    await giveFocusBack(
      opener,
      fallback,
      page(frame => frames.push(frame))
    );
    expect(opener.focused).toBe(false);
    expect(fallback).toHaveBeenCalledTimes(1);
    expect(frames.length).toBe(50); // 5000 ms at 100 ms a frame
  });

  it('focuses the fallback when the opener is gone from the page', async () => {
    const opener = new Button();
    const fallback = jest.fn();
    await giveFocusBack(
      opener,
      fallback,
      page(() => (opener.isConnected = false))
    );
    expect(opener.focused).toBe(false);
    expect(fallback).toHaveBeenCalledTimes(1);
  });

  it('leaves focus where the user moved it meanwhile', async () => {
    const opener = new Button();
    const elsewhere = new Button();
    const fallback = jest.fn();
    await giveFocusBack(
      opener,
      fallback,
      page(
        () => (opener.disabled = false),
        () => elsewhere
      )
    );
    expect(opener.focused).toBe(false);
    expect(fallback).not.toHaveBeenCalled();
  });

  it('focuses the fallback when no opener was known', async () => {
    const fallback = jest.fn();
    await giveFocusBack(
      null,
      fallback,
      page(() => undefined)
    );
    expect(fallback).toHaveBeenCalledTimes(1);
  });
});

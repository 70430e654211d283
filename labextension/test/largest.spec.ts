/**
 * The submit dialog's list of a large workspace's largest files and folders: the text a
 * user reads, rendered as React renders it.
 */

import * as React from 'react';
import { LargestItems } from '../src/largest';

// react-dom comes with JupyterLab (its packages depend on it); it ships no types here
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { renderToStaticMarkup } = require('react-dom/server') as {
  renderToStaticMarkup: (element: React.ReactElement) => string;
};

function text(element: React.ReactElement): string {
  return renderToStaticMarkup(element)
    .replace(/<\/(td|th|h3|p)>/g, ' | ')
    .replace(/<[^>]+>/g, '')
    .replace(/&#x27;|&apos;/g, "'")
    .replace(/\s+/g, ' ')
    .trim();
}

describe('LargestItems', () => {
  it('names each item, its size and its .manateeignore line', () => {
    const shown = text(
      React.createElement(LargestItems, {
        totalBytes: 60 * 1000 * 1000 + 8,
        ignoreFile: '.manateeignore',
        items: [
          { path: 'data/', kind: 'folder', size: 60000008, ignore_line: '/data/' },
          {
            path: 'data/raw/scans.bin',
            kind: 'file',
            size: 60000000,
            ignore_line: '/data/raw/scans.bin'
          }
        ]
      })
    );
    expect(shown).toBe(
      'Large workspace: 57.2 MB will be uploaded | ' +
        "These take the most room. To leave one out, add its line to .manateeignore in the notebook's folder. | " +
        'Path | Size | Line for .manateeignore | ' +
        'data/ | 57.2 MB | /data/ | ' +
        'data/raw/scans.bin | 57.2 MB | /data/raw/scans.bin |'
    );
  });

  it('says so when no line can name an item', () => {
    const shown = text(
      React.createElement(LargestItems, {
        totalBytes: 70000000,
        ignoreFile: '.manateeignore',
        items: [{ path: 'two\nlines.bin', kind: 'file', size: 70000000, ignore_line: null }]
      })
    );
    expect(shown).toContain('no line can name it: rename or move it');
  });

  it('shows nothing for a workspace under the threshold', () => {
    expect(
      renderToStaticMarkup(
        React.createElement(LargestItems, {
          totalBytes: 1000,
          ignoreFile: '.manateeignore',
          items: []
        })
      )
    ).toBe('');
  });
});

/**
 * What makes a large workspace large: its largest files and folders, each with the line
 * that, added to `.manateeignore` beside the notebook, leaves it out of the submission.
 *
 * React and the formatting helpers only, so its text is unit tested (jest, node).
 */

import * as React from 'react';
import { formatBytes } from './format';

export interface ILargestItem {
  /** From the notebook's folder; a folder ends in `/`. */
  path: string;
  kind: 'file' | 'folder' | string;
  size: number;
  /** e.g. `/data/raw.bin`; null when no line can name it. */
  ignore_line: string | null;
}

export interface ILargestProps {
  items: ILargestItem[];
  totalBytes: number;
  /** The ignore file's name (`.manateeignore`). */
  ignoreFile: string;
}

/** The confirm dialog's list of the largest files and folders (nothing when empty). */
export function LargestItems(props: ILargestProps): JSX.Element | null {
  const { items, totalBytes, ignoreFile } = props;
  if (items.length === 0) {
    return null;
  }
  return (
    <div className="jp-manatee-Manifest-largest" role="note" data-manifest="largest">
      <h3>Large workspace: {formatBytes(totalBytes)} will be uploaded</h3>
      <p>
        These take the most room. To leave one out, add its line to <code>{ignoreFile}</code> in the
        notebook&apos;s folder.
      </p>
      <table className="jp-manatee-Table">
        <thead>
          <tr>
            <th scope="col">Path</th>
            <th scope="col">Size</th>
            <th scope="col">Line for {ignoreFile}</th>
          </tr>
        </thead>
        <tbody>
          {items.map(item => (
            <tr key={item.path} data-kind={item.kind}>
              <td>
                <code>{item.path}</code>
              </td>
              <td>{formatBytes(item.size)}</td>
              <td>
                {item.ignore_line === null ? (
                  'no line can name it: rename or move it'
                ) : (
                  <code>{item.ignore_line}</code>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The shield icon of the sidebar tab and the submit buttons. */

import { LabIcon } from '@jupyterlab/ui-components';

const SHIELD_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M12 1.5 3.5 5v6.2c0 5.3 3.6 10.2 8.5 11.3 4.9-1.1 8.5-6 8.5-11.3V5L12 1.5zm0 2.2 6.5 2.7v4.8c0 4.3-2.8 8.3-6.5 9.3V3.7z"/>
</svg>`;

export const shieldIcon = new LabIcon({ name: 'jupyterlab-manatee:shield', svgstr: SHIELD_SVG });

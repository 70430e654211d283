"""Data provisioning: the data owner's tool that makes stage-1 data from the real table.

``manatee-provision`` (see `cli`) reads the real table only through an engine (`engines`:
DuckDB embedded, out of core; counts, never the rows), checks it against a domain fixed
without looking at the data (`domain`; drafted by ``manatee-provision domain``, `draft`),
shows the plan of the noise against the counts (`plan`), runs MST on the counts
(`mst.fit`), writes the synthetic CSV or Parquet in pieces (`output`) and a report
(`quality`), and can put the stage-1 and stage-2 files at their locations
(`files.upload`). `docs/data-owners/provisioning.md` is the data owner's guide. The heavy libraries
(mbi, JAX, DuckDB) come with the ``provision`` extra and are imported only when used.
`synthesize` and `read_table` serve tables small enough to hold in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .domain import Column, TableDomain, load_domain, parse_domain
from .errors import DomainError, InputError, MissingExtraError, ProvisionError
from .files import destination, read_table, upload, write_csv
from .privacy import delta_of, epsilon_for, rho_for

__all__ = [
    "Column",
    "DomainError",
    "InputError",
    "MissingExtraError",
    "ProvisionError",
    "TableDomain",
    "delta_of",
    "destination",
    "epsilon_for",
    "load_domain",
    "parse_domain",
    "read_table",
    "rho_for",
    "synthesize",
    "upload",
    "write_csv",
]


if TYPE_CHECKING:
    from .mst import Synthesis


def synthesize(*args: Any, **kwargs: Any) -> Synthesis:
    """Run MST (`mst.synthesize`); imported on first use, with its heavy libraries."""
    from .mst import synthesize as run

    return run(*args, **kwargs)

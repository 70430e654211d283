"""DataRepo: one name for a dataset, two places to read it from.

The same notebook reads the stage-1 location in JupyterLab and the stage-2 location in
the TEE, without any change: the repo picks the location of the current stage.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, BinaryIO

from .errors import StageAccessError
from .locations import Location, parse_location
from .stage import STAGE_1, STAGE_2, STAGE_EXPLANATION, current_stage

if TYPE_CHECKING:
    import pandas


class DataRepo:
    """Read data by name from the location of the current execution stage.

    ``stage1_location`` is read in stage 1 (JupyterLab), ``stage2_location`` in stage 2
    (the TEE). A location is ``gs://bucket[/prefix]``, ``https://host/path``,
    ``file://path`` or a local path (relative to the current directory, which is the
    notebook's folder in JupyterLab and in the stage-2 run). A name is joined to the
    location as to a folder, or put in place of a ``{name}`` placeholder::

        repo = sdk.DataRepo("data/{name}.s1", "data/{name}.s2")
        repo.get_data("insurance.csv")   # stage 1 reads data/insurance.csv.s1

    Every read method takes ``stage=`` to read the other stage's location on purpose:
    stage 1 data may be read in stage 2, but stage 2 data is refused in stage 1.
    """

    def __init__(
        self,
        stage1_location: str | os.PathLike[str],
        stage2_location: str | os.PathLike[str],
    ) -> None:
        self._stage = current_stage()
        self._locations: dict[int, Location] = {
            data_stage: parse_location(spec, reader_stage=self._stage, data_stage=data_stage)
            for data_stage, spec in ((STAGE_1, stage1_location), (STAGE_2, stage2_location))
        }

    def __repr__(self) -> str:
        first, second = self.locations
        return f"DataRepo({first!r}, {second!r})  # stage {self._stage}"

    @property
    def stage(self) -> int:
        """The execution stage (1 or 2) this repo reads for, fixed when it was made."""
        return self._stage

    @property
    def locations(self) -> tuple[str, str]:
        """The stage-1 and stage-2 locations, as given."""
        return (self._locations[STAGE_1].spec, self._locations[STAGE_2].spec)

    @property
    def location(self) -> str:
        """The location read in the current stage."""
        return self._locations[self._stage].spec

    def _pick(self, stage: int | None) -> Location:
        if stage is None:
            stage = self._stage
        if stage not in (STAGE_1, STAGE_2):
            raise ValueError(f"stage must be 1 or 2, got {stage!r}")
        if stage == STAGE_2 and self._stage == STAGE_1:
            raise StageAccessError(
                f"refusing to read the stage-2 location {self._locations[STAGE_2].spec!r} "
                f"in stage 1. {STAGE_EXPLANATION} The stage-2 data is read only when the "
                "notebook runs in the TEE: submit the notebook to run it there."
            )
        return self._locations[stage]

    def location_of(self, name: str, *, stage: int | None = None) -> str:
        """Return the full location (path or URL) ``name`` is read from."""
        return self._pick(stage).full(name)

    def get_data(self, name: str, encoding: str = "utf-8", *, stage: int | None = None) -> str:
        """Return the content of ``name`` as text (decoded with ``encoding``).

        A missing object raises ``FileNotFoundError`` naming its full location.
        """
        return self.get_bytes(name, stage=stage).decode(encoding)

    def get_bytes(self, name: str, *, stage: int | None = None) -> bytes:
        """Return the content of ``name`` as bytes."""
        return self._pick(stage).get_bytes(name)

    def open(self, name: str, *, stage: int | None = None) -> BinaryIO:
        """Return a binary file object streaming ``name``; use it in a ``with`` block.

        Large objects are read piece by piece instead of all at once.
        """
        return self._pick(stage).open(name)

    def read_csv(
        self, name: str, *, stage: int | None = None, **pandas_kwargs: Any
    ) -> pandas.DataFrame:
        """Read ``name`` as CSV into a pandas DataFrame (``pandas_kwargs`` go to ``read_csv``).

        Local files are handed to pandas by path, remote ones are streamed: neither is
        first copied whole into memory.
        """
        import pandas

        location = self._pick(stage)
        path = location.local_path(name)
        if path is not None:
            if not os.path.exists(path):
                raise location.not_found(name)
            return pandas.read_csv(path, **pandas_kwargs)
        with location.open(name) as handle:
            return pandas.read_csv(handle, **pandas_kwargs)

    def list(self, prefix: str = "", *, stage: int | None = None) -> list[str]:
        """Return the sorted names the location holds (in sub-folders too) that start
        with ``prefix``; each can be passed to ``get_data``. https:// cannot be listed."""
        return self._pick(stage).list(prefix)

"""The provisioning benchmark's baseline: smartnoise-synth's MST on the same CSV, domain and
epsilon as ``manatee-provision``. Run by the Python of an environment that has
``smartnoise-synth`` (it pins packages older than the project's, so it lives in its own):

    PYTHON smartnoise_mst.py TABLE.csv DOMAIN.json EPSILON DELTA OUTPUT.csv

The setup, chosen so that both fit the same discrete table:

- every column is binned into the domain's bins first (a category's position in the
  domain; a number's count of inner edges at or below it, as the project's engines bin:
  values outside the edges fall into the end bins), because snsynth's own BinTransformer
  only makes equal-width bins and would spend budget on bounds;
- those bin indices go to ``Synthesizer.create("mst", epsilon, delta)`` as categorical
  columns (its LabelTransformer, ``preprocessor_eps=0``): nothing of the budget goes to
  preprocessing, all of it to MST, as in ``manatee-provision``;
- as many rows are sampled as the table has, and written as CSV (bin indices: the
  un-binning to values that ``manatee-provision`` does is not part of snsynth).

The CSV is read whole by pandas, as snsynth's ``fit`` takes a data frame. The library's
own settings stay (its final estimation runs 5,000 iterations where ``manatee-provision``
runs 1,000). Prints one line per phase: ``phase seconds``.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd
from snsynth import Synthesizer


def binned(frame: pd.DataFrame, domain: dict) -> pd.DataFrame:
    """Each column of the domain as its bin index (int), in the domain's order."""
    out = {}
    for column in domain["columns"]:
        values = frame[column["name"]]
        if column["type"] == "category":
            position = {name: i for i, name in enumerate(column["categories"])}
            codes = values.astype(str).map(position)
            if codes.isna().any():
                raise SystemExit(f"{column['name']}: values outside the domain's categories")
            out[column["name"]] = codes.astype(np.int64)
        else:
            inner = np.asarray(column["edges"][1:-1], dtype=np.float64)
            numbers = values.to_numpy(dtype=np.float64)
            out[column["name"]] = np.searchsorted(inner, numbers, side="right").astype(np.int64)
    return pd.DataFrame(out)


def main(argv: list[str]) -> int:
    table, domain_path, epsilon, delta, output = argv
    started = time.perf_counter()
    with open(domain_path) as f:
        domain = json.load(f)
    frame = pd.read_csv(table)
    data = binned(frame, domain)
    del frame
    print(f"read_and_bin {time.perf_counter() - started:.1f}", flush=True)

    phase = time.perf_counter()
    synth = Synthesizer.create("mst", epsilon=float(epsilon), delta=float(delta))
    synth.fit(data, categorical_columns=list(data.columns), preprocessor_eps=0.0)
    print(f"fit {time.perf_counter() - phase:.1f}", flush=True)

    phase = time.perf_counter()
    sample = synth.sample(len(data))
    pd.DataFrame(sample, columns=data.columns).to_csv(output, index=False)
    print(f"sample_and_write {time.perf_counter() - phase:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

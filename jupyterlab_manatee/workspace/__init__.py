"""What a submission ships, and what is checked before it ships.

:mod:`.notebook` resolves the notebook under the contents root, :mod:`.scan` lists its
folder into a :mod:`.manifest`, :mod:`.archive` writes that manifest as a gzip tar;
:mod:`.largest` says what makes a workspace large, :mod:`.notebook_paths` and
:mod:`.import_check` (with :mod:`.tee_image`'s lists) warn before submission.
"""

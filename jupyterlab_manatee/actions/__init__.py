"""The shield panel's actions, one capability a module; :mod:`..manager` puts them together.

Each takes a :class:`.context.Context` (settings, contents root, log, worker threads, API
connections, job records) and the other actions it needs, so each can be built and tested
alone. They use the layers below: :mod:`..remote` (the API), :mod:`..workspace` (what a
submission ships), :mod:`..jobs` (this server's job state) and :mod:`..common`.
"""

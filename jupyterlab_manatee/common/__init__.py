"""Helpers every layer may use and that use none: worker threads at a low priority
(:mod:`.background`), writes handed off the loop (:mod:`.offload`), state files read
defensively (:mod:`.state_files`, :mod:`.local_setup`), fast gzip (:mod:`.fastgzip`)."""

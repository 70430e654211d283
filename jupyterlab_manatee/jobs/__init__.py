"""This server's state about jobs: the submission queue, the records of what it submitted
and saved, how a job is identified, the job list's order, saved outputs and what raised
in them, and the notice of a changed creator. Uses :mod:`..remote` only for the job uuid's
form; never the actions above it."""

"""The ManaTEE API as this server reaches it: :mod:`.wire` (its requests and replies, the
one module that knows them), :mod:`.api_client` (its routes over HTTP), :mod:`.api_session`
(pooled JSON connections), :mod:`.archive_stream` (an upload read while it is written),
:mod:`.readers`, :mod:`.reply_head`, :mod:`.signed_urls`, :mod:`.job_uuid`.

Nothing here knows the workspace, this server's job state or the panel's actions.
"""

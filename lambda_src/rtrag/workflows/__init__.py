"""The workflows users run through the scripts, written against ports so both backends share them:

- ``produce``: building and sending document events within Kinesis' limits (``put_event.py``);
- ``answering``: retrieving passages and answering from them (``ask.py``);
- ``replay`` with ``sources``, ``targets`` and ``checkpoint``: resumable replays of archived events onto the
  stream or into an index (``reindex.py``);
- ``redrive``: dead letters listed, shown and put back on the stream (``redrive.py``).

Their errors are typed (``sources.InvalidWindow``, ``checkpoint.CheckpointConflict``, ``redrive.Fix``...); only
``rtrag.cli.hints`` words them as command-line flags. May import: ``rtrag.indexing``, ``rtrag.core``; never an SDK
or an adapter.
"""

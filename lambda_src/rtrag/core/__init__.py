"""The core: what every layer agrees on, with no SDK and no adapter (import-linter forbids boto3, botocore,
numpy and Powertools here).

- the data contract: ``events`` (decoding and validating a document event), ``versions`` (Version, the ledger's
  entries), ``kinesis`` (the Lambda's Kinesis record shape), ``deadletters`` (a dead letter's body);
- the rules: ``chunking``, ``filters`` (S3 Vectors' filter language: one validation, one evaluator), ``values``
  (one ``KEY=VALUE`` typing), ``names``, ``limits`` (every documented service limit), ``vectors`` (checks a
  vector against those limits), ``backoff`` (the one retry formula), ``regions`` (the Regions the answering
  model can be called from), ``config``, ``errors``, ``shown`` (user values in reasons and log lines, bounded);
- ``contract``: the names that cross layers (environment variables, stack outputs, metric names, bounds), imported
  by ``stacks/``, the Lambda code and the scripts.

May import: the standard library only.
"""

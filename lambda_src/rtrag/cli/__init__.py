"""What the command-line scripts in ``scripts/`` share: parsers and help, the AWS session, the deployed
resources' names from the stack's outputs (``resources``), one-line error messages (``common.explain``) and the
wording of the workflows' typed errors as flags (``hints``).

May import every layer below the entry points; never loaded by a Lambda function.
"""

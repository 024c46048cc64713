"""The live meter stream: an HTTP receiver that lands packets as durable .jsonl segments.

- ``python -m meterflow.stream`` (``make stream``): the receiver (app.py, segments.py).
- ``python -m meterflow.stream.simulate --meters N --rate R``: meters sending their half-hourly
  packets, compressed in time (simulate.py).

Closed segments appear in ``<landing>/stream/`` for the ``packets`` feed of meter_ingest.
See docs/stream.md.
"""

"""The alerts side: match stored articles against watches, build digests, queue and deliver them.

`alerts.run` is the pass; `alerts.matching`, `alerts.digests` and `alerts.delivery` are its parts.
"""

"""Canonical fingerprint of a computation (the result cache's key, and the provenance of
kept results' names): defined in proto/provenance.py, where the SDK can reach it too."""

from remotegrad.proto.provenance import fingerprint

__all__ = ["fingerprint"]

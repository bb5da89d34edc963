"""CARBON: the data model every layer shares.

Symbols, tuples, interface and protocol specifications, endpoint 0 metadata, the strict
canonical CBOR encoding used on the wire and at rest, and the stable wire error codes.
CARBON is the lowest package: it imports nothing else from this project.
"""

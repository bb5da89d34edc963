"""The runtime's error family; codes are defined once, in carbon.error_codes."""

from carbon.error_codes import ErrorCode, MercuryError

__all__ = ["ErrorCode", "MercuryError"]

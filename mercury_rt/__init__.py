"""mercury-rt: entities talking to entities, by address alone, over UDP, safely."""

__version__ = "0.1.0"

"""Reading a node config file: the model's per-key rules, then the cross-file checks.

`config.node` says what each key may hold, `config.checks` judges a whole config and the
files it names, and this module runs both on a file or text. Loading lives here so that the
checks import the model and nothing imports the checks back. Every problem, in the config
or in a file it names, is reported at once.
"""

from __future__ import annotations

from pathlib import Path

from mercury_rt.config.checks import NodeConfigChecker
from mercury_rt.config.node import NodeConfig
from policy.yaml_source import ConfigFileError, load_model, parse_model


def load_node_config(path: Path) -> NodeConfig:
    """Read and validate a node config; raises ConfigFileError listing every problem.

    Relative paths are resolved against the config file's directory. The cluster directory
    must load (cluster.key and cluster-ids.cbor, matching each other) and the policy file,
    if named, must be valid: its own problems are listed with its own file and lines.
    """
    checker = NodeConfigChecker(path.parent)
    try:
        config = load_model(path, NodeConfig, checker.check)
    except ConfigFileError as exc:
        raise checker.with_extra(exc) from None
    return config.resolved(path.parent)


def parse_node_config(text: str, base: Path, filename: str = "<node config>") -> NodeConfig:
    """Like load_node_config, for text in hand (tests, generated configs); paths under `base`."""
    checker = NodeConfigChecker(base)
    try:
        config = parse_model(text, filename, NodeConfig, checker.check)
    except ConfigFileError as exc:
        raise checker.with_extra(exc) from None
    return config.resolved(base)

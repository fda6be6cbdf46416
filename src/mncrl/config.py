"""The workflow configuration: one source of truth for its keys, defaults and checks.

``config/schema.yaml`` (JSON Schema) documents every key, validates it and supplies every
default: :func:`validate` fills the defaults into the config in place, then runs the checks a
schema cannot express (:func:`mncrl.experiments.check_config`). The Snakefile calls
:func:`validate` before any job starts; callers outside Snakemake use :func:`load`, which
merges several files as Snakemake's ``--configfile`` does (mappings deep-merged, lists
replaced) and validates the result.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path

import jsonschema
import yaml

from mncrl import experiments
from mncrl.errors import MncrlError

DEFAULT_SCHEMA = "schema.yaml"  # next to the (first) config file


def _read_yaml(path: Path) -> dict:
    if not path.exists():
        raise MncrlError(f"config file not found: {path}")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise MncrlError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from None


def deep_merge(base: Mapping, over: Mapping) -> dict:
    """``over`` merged into a copy of ``base``: mappings recursively, anything else replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _extend_with_defaults(validator_class):
    """A validator class that also sets the ``default`` of every absent property."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


_Validator = _extend_with_defaults(jsonschema.Draft202012Validator)


def format_schema_error(error: jsonschema.ValidationError) -> str:
    """One line for a schema violation: where, what, and the allowed values."""
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    validator = error.validator
    if validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties") or {})
        patterns = list(error.schema.get("patternProperties") or {})
        extra = sorted(set(error.instance) - set(allowed))
        extra = [k for k in extra if not any(re.search(p, k) for p in patterns)]
        readable = [re.sub(r"\[.*$", "<name>", p.lstrip("^").replace("\\.", ".")) for p in patterns]
        return (
            f"config: unknown key '{extra[0] if extra else '?'}' in {where}; allowed keys: "
            f"{', '.join(allowed + readable)}"
        )
    if validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)
        return f"config: {where} = {error.instance!r} is not allowed; allowed values: {allowed}"
    ops = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    if validator in ops:
        return (
            f"config: {where} = {error.instance!r}; must be {ops[validator]} "
            f"{error.validator_value}"
        )
    return f"config: {where}: {error.message}"


def validate(config: dict, schema: str | Path) -> dict:
    """Validate ``config`` against the schema file, fill in its defaults (in place) and run
    the library's checks; MncrlError with one line naming the key otherwise."""
    schema_data = _read_yaml(Path(schema))
    error = jsonschema.exceptions.best_match(_Validator(schema_data).iter_errors(config))
    if error is not None:
        raise MncrlError(format_schema_error(error))
    try:
        experiments.check_config(config)
    except MncrlError as exc:
        raise MncrlError(f"config: {exc}") from None
    return config


def load(*paths: str | Path, schema: str | Path | None = None) -> dict:
    """The validated config of one or more YAML files (later files merged over earlier ones);
    the schema defaults to ``schema.yaml`` next to the first file."""
    if not paths:
        raise MncrlError("config.load needs at least one config file")
    config: dict = {}
    for path in paths:
        config = deep_merge(config, _read_yaml(Path(path)))
    schema = Path(paths[0]).parent / DEFAULT_SCHEMA if schema is None else schema
    return validate(config, schema)


__all__ = ["deep_merge", "format_schema_error", "load", "validate"]

"""Request validation: `field()` and the checks of each field type."""

from .limits import LANGUAGES


class ProtocolError(Exception):
    """A request that does not follow PROTOCOL.md; answered with EPROTO."""


REQUIRED = object()


def field(header, name, valid, default=REQUIRED):
    """header[name] checked with `valid`; absent or null gives `default` (or EPROTO if required)."""
    value = header.get(name)
    if value is None:
        if default is REQUIRED:
            raise ProtocolError(f"missing field {name!r}")
        return default
    if not valid(value):
        raise ProtocolError(f"invalid field {name!r}")
    return value


def is_id(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_str(v):
    return isinstance(v, str)


def is_bool(v):
    return isinstance(v, bool)


def is_count(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 2**53


def is_mode(v):
    return is_id(v) and 0 <= v <= 0o7777


def is_path(v):
    return isinstance(v, str) and v.startswith("/") and "\0" not in v


def is_argv(v):
    return isinstance(v, list) and v and all(isinstance(a, str) for a in v)


def is_env(v):
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


def is_language(v):
    return v in LANGUAGES

"""The one way a config problem is reported: `<file>: field 'train.lr': <what is wrong>`.

Every file read against a schema here (store.yaml, a policy rules file, an `eval:`
block given on its own) reports pydantic's errors through `config_error`, one line
per problem, so a merchant sees the same shape whatever section they mistyped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from storetune.errors import StoretuneError

M = TypeVar("M", bound=BaseModel)


def field_name(loc: tuple[Any, ...], section: str = "") -> str:
    """Dotted field path as written in the file: 'shipping.zones.0.cost'."""
    return ".".join(str(p) for p in (section, *loc) if p != "")


def format_errors(
    source: str | Path,
    err: ValidationError,
    *,
    section: str = "",
    via: Callable[[str], str | None] | None = None,
) -> str:
    """One line per problem, each naming the file and the dotted field.

    `section` prefixes the field when only one block of the file was validated;
    `via` may name where a field came from (a merchant's own key) for a hint.
    """
    lines = []
    for e in err.errors():
        field = field_name(tuple(e["loc"]), section)
        if not field:  # the whole document is the wrong shape
            lines.append(f"{source}: {e['msg']}")
            continue
        origin = via(field) if via else None
        note = f" (from '{origin}')" if origin else ""
        lines.append(f"{source}: field '{field}'{note}: {e['msg']}")
    return "\n".join(lines)


def config_error(
    source: str | Path,
    err: ValidationError,
    *,
    section: str = "",
    via: Callable[[str], str | None] | None = None,
) -> StoretuneError:
    return StoretuneError(format_errors(source, err, section=section, via=via))


def validate_section(model: type[M], raw: Any, source: str | Path, section: str = "") -> M:
    """`raw` validated against `model`; a problem raises the one formatted error."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise config_error(source, e, section=section) from None

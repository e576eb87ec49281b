"""docrag's filter syntax: Haystack filters as they are, or the short form ``{"source", "file_name", "page",
"entity", "file_type"}``. Every filter is validated here, so a bad one is a :class:`FilterError` (HTTP 400)
and never a backend traceback.
"""

from __future__ import annotations

from typing import Any

from ingest.entity_keys import parse_key
from ingest.errors import FilterError

# short-form key -> payload field (every one has a payload index, see ingest.store.schema)
SHORT_FIELDS = {"source": "meta.source", "file_name": "meta.file_name", "page": "meta.page_numbers",
                "entity": "meta.entity_keys", "file_type": "meta.file_type"}
COMPARISONS = frozenset({"==", "!=", ">", ">=", "<", "<=", "in", "not in"})
LOGICAL = frozenset({"AND", "OR", "NOT"})


def entity_filter_key(value: str) -> str:
    """``"org: U. S.  C."`` -> ``"ORG:u.s.c."``, the form stored in ``meta.entity_keys`` (``ingest.entity_keys``)."""
    try:
        return parse_key(value)
    except ValueError as e:
        raise FilterError(str(e)) from e


def validate(filters: dict[str, Any]) -> dict[str, Any]:
    """Checks a Haystack filter tree; returns it unchanged or raises :class:`FilterError` naming the fault."""
    if not isinstance(filters, dict):
        raise FilterError(f"a filter must be an object, not {type(filters).__name__}")
    op = filters.get("operator")
    if op in LOGICAL:
        conds = filters.get("conditions")
        if not isinstance(conds, list) or not conds:
            raise FilterError(f"logical filter {op!r} needs a non-empty 'conditions' list")
        for c in conds:
            validate(c)
        return filters
    if op not in COMPARISONS:
        raise FilterError(f"unknown filter operator {op!r}: use one of "
                          f"{', '.join(sorted(COMPARISONS | LOGICAL))}")
    field = filters.get("field")
    if not isinstance(field, str) or not field:
        raise FilterError(f"filter condition {filters!r} needs a 'field'")
    if "value" not in filters:
        raise FilterError(f"filter condition on {field!r} needs a 'value'")
    if op in ("in", "not in") and not isinstance(filters["value"], list):
        raise FilterError(f"operator {op!r} on {field!r} needs a list value")
    return filters


def to_haystack_filters(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    """Accepts Haystack filters (validated), or the short form ``{"source", "file_name", "page", "entity"}``."""
    if not filters:
        return None
    if "operator" in filters:
        return validate(filters)
    conds = []
    for key, value in filters.items():
        field_name = SHORT_FIELDS.get(key)
        if field_name is None:
            raise FilterError(f"unknown filter {key!r}: use source, file_name, page, entity or file_type")
        values = value if isinstance(value, list) else [value]
        if key == "entity":
            values = [entity_filter_key(v) for v in values]
        conds.append({"field": field_name, "operator": "in", "value": values})
    return conds[0] if len(conds) == 1 else {"operator": "AND", "conditions": conds}


def source_filter(source: str, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """All chunks of one stored document (and ``extra`` conditions)."""
    conds = [{"field": "meta.source", "operator": "==", "value": source}, *(extra or [])]
    return {"operator": "AND", "conditions": conds}


def and_(*conds: dict[str, Any] | None) -> dict[str, Any] | None:
    """The conjunction of the given filters (None ones dropped)."""
    real = [c for c in conds if c]
    if not real:
        return None
    return real[0] if len(real) == 1 else {"operator": "AND", "conditions": real}

"""Building rejected rows in bulk, for meterflow.cleansing: messages per distinct value, the
raw row's JSON joined column by column by pyarrow, never Python per row."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from meterflow.models import Reason

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

REASONS = list(Reason)  # a row's reason is stored as its index here + 1; 0 is a clean row
_REASON_NO = {r.value: i + 1 for i, r in enumerate(REASONS)}


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    if isinstance(value, str) and not value.strip():
        return True
    try:
        import pandas as pd

        return value is pd.NaT or (not isinstance(value, str) and bool(pd.isna(value)))
    except (TypeError, ValueError):
        return False


def _factorize(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct values); code -1 is a missing value."""
    import numpy as np
    import pandas as pd

    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(dtype="int64"), np.asarray(
            values.cat.categories, dtype=object
        )
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    return codes.astype("int64"), np.asarray(uniques, dtype=object)


def _per_row(per_value: np.ndarray, codes: np.ndarray, missing: Any) -> np.ndarray:
    """Index per-distinct-value results by row codes; code -1 takes ``missing``."""
    import numpy as np

    extended = np.empty(len(per_value) + 1, dtype=per_value.dtype)
    extended[:-1] = per_value
    extended[-1] = missing
    return extended[codes]


def _problems(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(reason number or 0, message or None) per row of a reader's ``problem`` column."""
    import numpy as np

    codes, uniques = _factorize(values)
    known = {r.value for r in Reason}
    reasons = np.zeros(len(uniques), dtype="int16")
    messages = np.empty(len(uniques), dtype=object)
    for i, value in enumerate(uniques):
        text = str(value).strip()
        head, sep, tail = text.partition(":")
        if head.strip() in known:
            reasons[i] = _REASON_NO[head.strip()]
            messages[i] = tail.strip() if sep and tail.strip() else head.strip()
        else:
            reasons[i] = _REASON_NO[Reason.MALFORMED_RECORD.value]
            messages[i] = text
    return _per_row(reasons, codes, 0), _per_row(messages, codes, None)


def _by_value(codes: np.ndarray, uniques: np.ndarray, message) -> np.ndarray:
    """``message(value)`` per row, computed once per distinct value (code -1: missing)."""
    import numpy as np

    used = np.unique(codes)
    texts = np.empty(len(uniques) + 1, dtype=object)
    for c in used.tolist():
        texts[c] = message(uniques[c] if c >= 0 else None)
    return texts[codes]


def _by_keys(keys: np.ndarray, message) -> np.ndarray:
    """``message(key)`` per row, computed once per distinct key."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(keys, use_na_sentinel=False)
    texts = np.asarray([message(u) for u in uniques], dtype=object)
    return texts[codes] if len(uniques) else np.empty(0, dtype=object)


def _join(parts: list) -> np.ndarray:
    """Row-wise concatenation of string arrays and constants (pyarrow, no Python per row)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = [p if isinstance(p, str) else pa.array(p, type=pa.string()) for p in parts]
    return np.asarray(pc.binary_join_element_wise(*arrays, "").to_pylist(), dtype=object)


def _used(codes: np.ndarray, uniques: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes, uniques) narrowed to the values the rows use (a categorical column of a chunk
    has thousands of categories; its few rejected rows need only theirs)."""
    import numpy as np

    if len(uniques) <= len(codes):
        return codes, uniques
    present = np.unique(codes[codes >= 0])
    remap = np.full(len(uniques) + 1, -1, dtype="int64")
    remap[present] = np.arange(len(present))
    return remap[codes], uniques[present]


def _decoded(codes: np.ndarray, texts: list) -> Any:
    """pyarrow strings ``texts[code]`` per row (C++ take, no Python per row)."""
    import pyarrow as pa

    dictionary = pa.array(texts, type=pa.string())
    return pa.DictionaryArray.from_arrays(
        pa.array(codes, type=pa.int32()), dictionary
    ).dictionary_decode()


def _arrow_text(codes: np.ndarray, texts: list) -> Any:
    """A pandas text column (pyarrow-backed) of ``texts[code]``; code -1 or a None text is null."""
    import numpy as np
    import pandas as pd

    null = np.asarray([t is None for t in texts] + [True])
    safe = np.where(codes < 0, len(texts), codes)
    values = _decoded(safe, [t or "" for t in texts] + [""])
    if null[safe].any():
        import pyarrow as pa
        import pyarrow.compute as pc

        values = pc.if_else(pa.array(null[safe]), pa.scalar(None, pa.string()), values)
    return pd.arrays.ArrowExtensionArray(values)


def _json_texts(uniques: np.ndarray) -> list[str]:
    """JSON of each distinct raw value (as ``_show`` gives it), then "null" for a missing one.
    Plain strings are escaped by pyarrow in bulk; others (numbers, dates) one by one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out: list[str | None] = [None] * len(uniques)
    plain = [i for i, u in enumerate(uniques) if type(u) is str and u.strip()]
    if plain:
        arr = pa.array([uniques[i] for i in plain], type=pa.string())
        special = pc.match_substring_regex(arr, r"[\x00-\x1f]").to_pylist()
        escaped = pc.replace_substring(pc.replace_substring(arr, "\\", "\\\\"), '"', '\\"')
        quoted = pc.binary_join_element_wise('"', escaped, '"', "").to_pylist()
        for i, text, odd in zip(plain, quoted, special, strict=True):
            if not odd:
                out[i] = text
    for i, text in enumerate(out):
        if text is None:  # numbers, dates, blanks, control characters
            out[i] = json.dumps(_show(uniques[i]), ensure_ascii=False)
    return [*out, "null"]


def _show(value: Any) -> Any:
    """A raw value as JSON can hold it (text for dates, None for missing)."""
    if _missing(value):
        return None
    if isinstance(value, float) and value - value != 0:  # inf, nan: no JSON number holds them
        return str(value)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return value
    return str(value)


def _utc_text(ns: int) -> str:
    from datetime import UTC

    try:
        return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "?"

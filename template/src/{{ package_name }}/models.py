"""Value types returned by the library."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The server writes JSONB out as one canonical value with nothing around it, so the
# decoder's single scan (raw_decode) is all it takes; json.loads adds two whitespace
# passes and two calls, a third of the cost of a small document.
_decode_json = json.JSONDecoder().raw_decode


@dataclass(frozen=True, slots=True)
class Record:
    """One row of the example ``records`` table."""

    id: int
    kind: str
    data: dict[str, Any]
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Record:
        """Build from a database row with the table's columns."""
        # asyncpg hands JSONB back as text unless a codec is registered on every
        # connection; decoding here keeps the library independent of the host's pool setup.
        data = row["data"]
        # Positional arguments: every call of the library builds records, and keywords
        # cost a frozen dataclass more (benchmarks/call_overhead.py).
        return cls(
            row["id"],
            row["kind"],
            _decode_json(data)[0] if isinstance(data, str) else dict(data),
            row["created_at"],
        )

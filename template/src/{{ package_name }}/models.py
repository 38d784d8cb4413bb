"""Value types returned by the library."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# The server writes a JSONB value out canonically, with nothing around it, so the
# decoder's single scan (raw_decode) is all it takes: json.loads adds two calls and two
# whitespace passes, about half its cost on a small document. (A `json` column keeps the
# text as sent, whitespace included: read one of those with json.loads.)
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
        # In the fields' order, positionally: every call of the library builds records,
        # and this keeps their cost within the library's budget against raw asyncpg
        # (benchmarks/call_overhead.py). A new field goes here at its place in the order.
        return cls(
            row["id"],
            row["kind"],
            _decode_json(data)[0] if isinstance(data, str) else dict(data),
            row["created_at"],
        )

"""Value types returned by the library."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


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
        return cls(
            id=row["id"],
            kind=row["kind"],
            data=json.loads(data) if isinstance(data, str) else dict(data),
            created_at=row["created_at"],
        )

"""SQL of the example domain.

Every table name is a pgdbm ``{{tables.name}}`` placeholder: the database manager
qualifies it with the library's schema. That is what lets the same query run
standalone (own pool) and embedded (a host's shared pool, whose search_path is
pinned to pg_catalog so that an unqualified name fails loudly).
"""

# $2 is JSON text, parsed by the server: `$2::text::jsonb` keeps a JSONB codec that the
# host's pool may register (json.dumps as encoder) from encoding it again as a JSON string.
INSERT_RECORD = """
    INSERT INTO {{tables.records}} (kind, data) VALUES ($1, $2::text::jsonb)
    RETURNING id, kind, data, created_at
"""

GET_RECORD = """
    SELECT id, kind, data, created_at FROM {{tables.records}} WHERE id = $1
"""

# $1 may be NULL: one statement (and one cached plan) serves both "all kinds" and "one kind".
LIST_RECORDS = """
    SELECT id, kind, data, created_at FROM {{tables.records}}
    WHERE ($1::text IS NULL OR kind = $1)
    ORDER BY created_at DESC, id DESC
    LIMIT $2
"""

DELETE_RECORD = """
    DELETE FROM {{tables.records}} WHERE id = $1
"""

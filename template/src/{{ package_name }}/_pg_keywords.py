# Owned by the copier-pgdbm template: `copier update` replaces this file, so do not edit it.
"""PostgreSQL keywords that cannot be the library's schema name.

pgdbm writes the schema name into SQL unquoted (``<schema>.schema_migrations``), and only
unreserved keywords work as bare identifiers everywhere. This is every keyword whose
category in ``pg_get_keywords()`` is not 'U' (unreserved) in PostgreSQL 15 or 18, the oldest
and the newest server the template supports (json, json_*, merge_action and system_user
became keywords after 15: a database may move to a newer server). The template's copier.yml
refuses the same words as a schema name, and its tests check both lists against a server.
"""

# R: reserved.
_RESERVED = """
    all analyse analyze and any array as asc asymmetric both case cast check collate column
    constraint create current_catalog current_date current_role current_time
    current_timestamp current_user default deferrable desc distinct do else end except false
    fetch for foreign from grant group having in initially intersect into lateral leading
    limit localtime localtimestamp not null offset on only or order placing primary
    references returning select session_user some symmetric system_user table then to
    trailing true union unique user using variadic when where window with
"""
# T: reserved, but can be a function or type name.
_TYPE_FUNC_NAME = """
    authorization binary collation concurrently cross current_schema freeze full ilike inner
    is isnull join left like natural notnull outer overlaps right similar tablesample
    verbose
"""
# C: unreserved, but cannot be a function or type name.
_COL_NAME = """
    between bigint bit boolean char character coalesce dec decimal exists extract float
    greatest grouping inout int integer interval json json_array json_arrayagg json_exists
    json_object json_objectagg json_query json_scalar json_serialize json_table json_value
    least merge_action national nchar none normalize nullif numeric out overlay position
    precision real row setof smallint substring time timestamp treat trim values varchar
    xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi
    xmlroot xmlserialize xmltable
"""

RESERVED_KEYWORDS: frozenset[str] = frozenset(
    _RESERVED.split() + _TYPE_FUNC_NAME.split() + _COL_NAME.split()
)

-- The example domain. Every table goes through pgdbm's {{tables.name}} placeholder,
-- so this file creates the same layout in whatever schema the library is given.
CREATE TABLE {{tables.records}} (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind <> ''),
    data JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Serves list_records(kind=...), newest first.
CREATE INDEX records_kind_created_at_idx ON {{tables.records}} (kind, created_at DESC, id DESC);

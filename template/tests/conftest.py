"""Your fixtures: add here what your own tests share.

The template's fixtures come from two plugins that `copier update` keeps current (do not
edit them): tests/fixtures.py gives ``mode`` (every library test runs twice, standalone
and on a host's shared pool), ``lib`` (an initialized instance whose tables are empty when
the test starts), ``make_lib`` (fresh instances in a fresh schema, for tests about
schemas, migrations or the lifecycle) and ``shared_pool``; tests/pg_server.py gives the
server, ``database_url``, ``admin_pool`` and fresh ``schema`` names.
"""

pytest_plugins = ["tests.pg_server", "tests.fixtures"]

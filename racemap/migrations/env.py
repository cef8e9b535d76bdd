"""alembic's environment for racemap: always online, on the connection racemap.migrations passes
(``config.attributes["connection"]``), inside its transaction."""

from alembic import context

from racemap.migrations import SCHEMA, VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    version_table=VERSION_TABLE,
    version_table_schema=SCHEMA,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()

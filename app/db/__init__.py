"""The database room: the engine and its pool, the embedded PostgreSQL, the Piccolo tables,
the migration runner and the pgvector column type. Areas own what their tables mean; this room
only knows how to reach them."""

"""Claims leased work from the database, runs the engine, persists progress, honours cancel."""

"""Security regressions: each test performs an attack and shows it does no harm."""

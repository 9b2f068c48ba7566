"""Live run output: log chunks stored in Postgres and announced with NOTIFY, a per-process
LISTEN bus, the Server-Sent Events endpoint and the small page that renders it."""

"""Inbound webhooks: verify, journal, acknowledge. GitHub (HMAC-SHA256), and later Grafana
(bearer) and Sentry (HMAC). Nothing here waits on GitHub or on handlers: the journal row and its
job commit together and the worker does the rest."""

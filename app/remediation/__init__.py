"""Alerts become deduplicated issues; merged fixes are verified."""

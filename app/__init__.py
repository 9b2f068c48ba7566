"""Dispatch: a GitHub App that runs AI coding agents on GitHub issues."""

__version__ = "0.1.0"

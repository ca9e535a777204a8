"""Duban (督办): supervision loops for citizen-hotline tickets and One-Question-a-Month plans."""

__version__ = "0.1.0"

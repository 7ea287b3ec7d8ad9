"""Recorded state: what mscsctl last applied, behind a backend interface."""

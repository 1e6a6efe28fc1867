"""Readers and writers of HugeCTR's files."""

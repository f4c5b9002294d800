"""Shared pytest configuration: headless matplotlib and quiet, deterministic torch for every test."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub is reachable: never wait on retries
os.environ.setdefault("TQDM_DISABLE", "1")

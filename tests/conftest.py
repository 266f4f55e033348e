"""Shared fixtures: the repository root and a single torch thread for reproducible timing."""

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def root() -> Path:
    return ROOT

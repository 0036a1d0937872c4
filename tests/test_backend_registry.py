"""One way to pick a backend for a model path: each backend says which paths it opens, the registry asks them.

A new runtime is one module plus one line in the registry's module table; the fake ONNX backend below is
exactly that, and `card_for` finds it without any other change.
"""

from __future__ import annotations

import sys
import textwrap

import pytest

from harness.errors import HarnessError
from harness.models import backends
from harness.models.backends import BACKENDS, backend_class, backend_for_path, backend_opening
from harness.models.zoo import card_for

MB3 = "models/mb3-centernet"


@pytest.mark.parametrize("rel, want", [("raw", "savedmodel"), ("hub", "savedmodel"),
                                       ("raw_f32.tflite", "tflite"), ("raw_int8.tflite", "tflite")])
def test_mirror_models_are_opened_by_their_own_backend(mirror, rel, want):
    assert backend_for_path(mirror / MB3 / rel) == want


def test_a_tflite_file_is_known_by_its_flatbuffer_identifier_whatever_its_name(mirror, tmp_path):
    link = tmp_path / "model.bin"
    link.symlink_to(mirror / MB3 / "raw_f32.tflite")
    assert backend_for_path(link) == "tflite"


def test_a_path_no_backend_opens_says_what_each_takes(mirror, tmp_path):
    assert backend_for_path(tmp_path / "later.tflite") == "tflite"  # judged by name before it exists
    with pytest.raises(HarnessError, match="model not found"):
        backend_for_path(tmp_path / "missing.bin")
    with pytest.raises(HarnessError, match=r"no backend opens .*MODEL_CARD.md.*tflite: a \.tflite file.*savedmodel"):
        backend_for_path(mirror / MB3 / "MODEL_CARD.md")
    assert backend_opening(tmp_path) is None  # a directory without saved_model.pb is no SavedModel


def test_the_model_states_its_own_input(mirror):
    """MODEL_CARD.md: raw/ takes float32 [1,512,512,3]; hub/ uint8 of any size; the int8 .tflite is fed float."""
    raw = backend_class("savedmodel").model_input(mirror / MB3 / "raw")
    hub = backend_class("savedmodel").model_input(mirror / MB3 / "hub")
    int8 = backend_class("tflite").model_input(mirror / MB3 / "raw_int8.tflite")
    assert (raw.height, raw.width, raw.dtype) == (512, 512, "float32")
    assert (hub.height, hub.width, hub.dtype) == (None, None, "uint8")
    assert (int8.height, int8.width, int8.dtype) == (512, 512, None)  # the backend quantizes (q = pixel - 128)


FAKE_ONNX = '''
from harness.models.backends.base import Backend, ModelInput, register_backend


@register_backend
class FakeOnnxBackend(Backend):
    name = "fakeonnx"
    takes = "an .onnx file"

    @classmethod
    def opens(cls, path):
        return path.suffix == ".onnx"

    @classmethod
    def model_input(cls, path):
        return ModelInput(320, 320, "float32")

    def load(self): ...
    def set_input(self, batch): ...
    def invoke(self): ...
    def read_outputs(self): return {}
    def describe(self): return {"backend": self.name}
'''


@pytest.fixture
def fake_onnx(tmp_path, monkeypatch):
    (tmp_path / "fake_onnx_backend.py").write_text(textwrap.dedent(FAKE_ONNX))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(backends._MODULES, "fakeonnx", "fake_onnx_backend")  # the one line a backend adds
    saved = dict(BACKENDS)
    yield tmp_path
    BACKENDS.clear()
    BACKENDS.update(saved)
    sys.modules.pop("fake_onnx_backend", None)


def test_a_new_backend_is_one_module_and_one_registry_line(fake_onnx):
    model = fake_onnx / "detector.onnx"
    model.write_bytes(b"onnx")
    assert backend_for_path(model) == "fakeonnx"
    card = card_for(str(model), decoder="ltrb_centernet")
    assert card.backend == "fakeonnx"
    assert (card.input.height, card.input.width) == (320, 320)
    assert card.decoder_params["input_size"] == (320, 320)  # boxes are scaled from the model's own input
    assert card_for(str(model), like="mb3-centernet-f32").backend == "fakeonnx"

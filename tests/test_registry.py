"""The generic :class:`encoders.registries.Registry` and the encoder and fusion registries built on it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import encoders.registry as encoder_registry
from encoders import (
    DEFAULT_ENCODERS,
    MODALITIES,
    Encoder,
    EncoderError,
    EncoderIdentity,
    EncoderOutput,
    UnknownEncoderError,
    create_encoder,
    get_encoder_class,
    list_encoders,
    register_encoder,
    shared_encoder,
)
from encoders.audio_yamnet import YamnetAudioEncoder
from encoders.registries import Registry, UnknownNameError, set_registry_name
from encoders.registry import ENCODERS
from encoders.text_sentence_transformers import MiniLMTextEncoder, SentenceTransformerTextEncoder
from fusion.layers import (
    FUSIONS,
    AttentionFusion,
    FusionConfig,
    FusionLayer,
    FusionOutput,
    MeanFusion,
    UnknownFusionError,
    create_fusion,
    get_fusion_class,
    list_fusions,
    register_fusion,
)

REPO = Path(__file__).resolve().parents[1]


class _Missing(LookupError):
    pass


# ----------------------------------------------------------------------------- Registry


def test_register_decorator_add_and_lookups() -> None:
    reg: Registry[Any] = Registry("widget")

    @reg.register("b")
    class B:
        pass

    def a() -> None: ...

    assert reg.add("a", a) is a
    assert reg.get("b") is B and reg.get("a") is a
    assert reg.names() == ["a", "b"] == list(reg)
    assert "a" in reg and "c" not in reg and len(reg) == 2


def test_duplicate_name_with_another_object_is_refused() -> None:
    reg: Registry[Any] = Registry("widget")

    @reg.register("x")
    class First:
        pass

    with pytest.raises(ValueError, match="widget name 'x' is already registered by First"):

        @reg.register("x")
        class Second:
            pass

    assert reg.get("x") is First


def test_same_object_twice_is_fine() -> None:
    calls: list[tuple[str, object]] = []
    reg: Registry[object] = Registry("widget", on_register=lambda n, o: calls.append((n, o)))
    obj = object()
    reg.add("x", obj)
    reg.add("x", obj)
    assert reg.names() == ["x"] and reg.get("x") is obj
    assert calls == [("x", obj), ("x", obj)]


def test_unknown_name_raises_the_configured_error_listing_valid_names() -> None:
    reg: Registry[int] = Registry("widget", error=_Missing)
    reg.add("beta", 2)
    reg.add("alpha", 1)
    with pytest.raises(_Missing) as e:
        reg.get("gamma")
    assert str(e.value) == "unknown widget 'gamma'; valid names: alpha, beta"
    assert isinstance(reg.unknown("z"), _Missing)


def test_default_error_is_a_readable_key_error() -> None:
    reg: Registry[int] = Registry("widget")
    reg.add("one", 1)
    with pytest.raises(KeyError) as e:
        reg.get("two")
    assert type(e.value) is UnknownNameError
    # KeyError's own str() would wrap the message in quotes.
    assert str(e.value) == "unknown widget 'two'; valid names: one"


def test_names_where_filters_entries() -> None:
    reg: Registry[int] = Registry("number")
    for name, value in [("one", 1), ("two", 2), ("three", 3), ("four", 4)]:
        reg.add(name, value)
    assert reg.names(where=lambda v: v % 2 == 0) == ["four", "two"]
    assert reg.names(where=lambda v: v > 10) == []
    assert reg.names() == ["four", "one", "three", "two"]


def test_loader_runs_once_and_only_at_the_first_lookup() -> None:
    calls = []

    def loader() -> None:
        calls.append(1)
        reg.add("builtin", 0)

    reg: Registry[int] = Registry("widget", loader=loader)
    reg.add("extra", 1)  # registering does not load
    assert calls == []
    assert reg.get("builtin") == 0
    assert calls == [1]
    for lookup in (reg.names, lambda: reg.get("extra"), lambda: "x" in reg, lambda: len(reg), reg.load):
        lookup()
    assert calls == [1]
    assert reg.names() == ["builtin", "extra"]


def test_lookups_inside_the_loader_see_what_is_registered_so_far() -> None:
    seen = []

    def loader() -> None:
        reg.add("first", 1)
        seen.append(reg.names())  # re-entrant: must not run the loader again nor block
        reg.add("second", 2)

    reg: Registry[int] = Registry("widget", loader=loader)
    assert reg.names() == ["first", "second"]
    assert seen == [["first"]]


def test_concurrent_first_lookups_wait_for_the_whole_loader() -> None:
    started = threading.Event()

    def loader() -> None:
        started.set()
        reg.add("a", 1)
        time.sleep(0.2)  # another thread looks up meanwhile
        reg.add("b", 2)

    reg: Registry[int] = Registry("widget", loader=loader)
    results: list[list[str]] = []
    first = threading.Thread(target=lambda: results.append(reg.names()))
    first.start()
    assert started.wait(5)
    assert reg.get("b") == 2  # not an unknown-name error from a half-loaded registry
    first.join()
    assert results == [["a", "b"]]


def test_registering_does_not_wait_for_a_running_loader() -> None:
    # As when the loader imports a module that another thread is importing, and that
    # module registers itself: the loader waits for that thread, which must not wait for it.
    registered = threading.Event()
    loader_saw_it: list[bool] = []

    def loader() -> None:
        loader_saw_it.append(registered.wait(5))

    reg: Registry[int] = Registry("widget", loader=loader)
    looker = threading.Thread(target=reg.names)
    looker.start()
    time.sleep(0.05)  # let the loader start
    reg.add("late", 1)
    registered.set()
    looker.join(5)
    assert not looker.is_alive() and reg.names() == ["late"]
    assert loader_saw_it == [True], "the registration waited for the loader"


def test_a_failing_loader_is_not_retried() -> None:
    calls = []

    def loader() -> None:
        calls.append(1)
        raise RuntimeError("broken built-in")

    reg: Registry[int] = Registry("widget", loader=loader)
    with pytest.raises(RuntimeError, match="broken built-in"):
        reg.names()
    assert reg.names() == [] and calls == [1]


def test_on_register_can_validate_and_annotate() -> None:
    def check(name: str, cls: type) -> None:
        if name.startswith("_"):
            raise ValueError("private name")
        set_registry_name(name, cls)

    reg: Registry[type] = Registry("widget", on_register=check)

    class Good:
        registry_name = ""

    class Bad:
        registry_name = ""

    reg.add("good", Good)
    assert Good.registry_name == "good"
    with pytest.raises(ValueError, match="private name"):
        reg.add("_bad", Bad)
    assert "_bad" not in reg and Bad.registry_name == ""


# ----------------------------------------------------------------------------- encoders


class _DummyEncoder(Encoder):
    """A cheap encoder that records its constructor arguments."""

    modality = "text"

    def __init__(self, spec: str = "", device: str = "cpu") -> None:
        self.spec = spec
        self.device = device

    @property
    def dim(self) -> int:
        return 2

    @property
    def identity(self) -> EncoderIdentity:
        return EncoderIdentity(self.registry_name, "dummy", "0" * 16, 2)

    def prepare(self, item: Any) -> Any:
        return item

    def encode_prepared(self, batch: Sequence[Any]) -> EncoderOutput:
        return EncoderOutput(np.zeros((len(batch), 2), np.float32))


@pytest.fixture
def scratch_encoders(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Registrations and shared instances made by a test are forgotten after it."""
    ENCODERS.load()
    monkeypatch.setattr(ENCODERS, "_entries", dict(ENCODERS._entries))
    monkeypatch.setattr(encoder_registry, "_SHARED", {})
    yield


def test_builtin_encoders_are_registered_under_their_names() -> None:
    names = list_encoders()
    for expected in ("yamnet", "efficientnet-lite0", "minilm-l6", "sentence-transformers"):
        assert expected in names
    assert names == sorted(names) == ENCODERS.names()
    for name in names:
        assert get_encoder_class(name).registry_name == name
    assert get_encoder_class("yamnet") is YamnetAudioEncoder
    assert get_encoder_class("minilm-l6") is MiniLMTextEncoder
    for m in MODALITIES:
        assert DEFAULT_ENCODERS[m] in list_encoders(m)


def test_list_encoders_filters_by_modality() -> None:
    assert list_encoders("audio") == ["yamnet"]
    assert set(list_encoders("text")) | set(list_encoders("image")) | set(list_encoders("audio")) == set(
        list_encoders()
    )
    assert all(get_encoder_class(n).modality == "image" for n in list_encoders("image"))
    assert list_encoders("smell") == []


def test_get_encoder_class_ignores_the_spec_and_reports_the_whole_name() -> None:
    assert get_encoder_class("sentence-transformers:/some/model") is SentenceTransformerTextEncoder
    with pytest.raises(UnknownEncoderError) as e:
        get_encoder_class("nope:with/spec")
    message = str(e.value)
    assert message.startswith("unknown encoder 'nope:with/spec'; valid names: ")
    assert message.endswith(", ".join(list_encoders()))
    assert isinstance(e.value, KeyError) and isinstance(e.value, EncoderError)


def test_register_encoder_sets_name_and_passes_the_spec(scratch_encoders: None) -> None:
    @register_encoder("dummy-text")
    class Dummy(_DummyEncoder):
        pass

    assert Dummy.registry_name == "dummy-text"
    assert "dummy-text" in list_encoders("text") and "dummy-text" not in list_encoders("image")
    enc = create_encoder("dummy-text:some/arg", device="meta")
    assert isinstance(enc, Dummy) and enc.spec == "some/arg" and enc.device == "meta"
    assert create_encoder("dummy-text", modality="text").spec == ""
    with pytest.raises(
        UnknownEncoderError, match="encoder 'dummy-text' encodes text, not audio; valid audio encoders: yamnet"
    ):
        create_encoder("dummy-text", modality="audio")


def test_register_encoder_checks_the_modality(scratch_encoders: None) -> None:
    with pytest.raises(ValueError, match=r"Smelly\.modality='smell'; expected one of"):

        @register_encoder("smelly")
        class Smelly(_DummyEncoder):
            modality = "smell"

    assert "smelly" not in list_encoders()


def test_register_encoder_refuses_a_builtin_name_before_any_lookup() -> None:
    # A fresh process: nothing has looked a name up, so the built-ins are not loaded yet.
    code = (
        "import sys\n"
        "from encoders import register_encoder\n"
        "from encoders.registry import ENCODERS\n"
        "assert 'encoders.audio_yamnet' not in sys.modules  # importing the registry loads nothing\n"
        "from encoders.text_sentence_transformers import MiniLMTextEncoder\n"
        "try:\n"
        "    register_encoder('minilm-l6')(type('Other', (MiniLMTextEncoder,), {}))\n"
        "except ValueError as e:\n"
        "    print(e)\n"
        "print(ENCODERS.get('minilm-l6').__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.splitlines() == [
        "encoder name 'minilm-l6' is already registered by MiniLMTextEncoder",
        "MiniLMTextEncoder",
    ]


def test_shared_encoder_is_one_instance_per_key(scratch_encoders: None) -> None:
    register_encoder("dummy-shared")(type("DummyShared", (_DummyEncoder,), {}))
    a = shared_encoder("dummy-shared", "text")
    assert shared_encoder("dummy-shared", "text") is a
    assert a.device == "cpu"
    b = shared_encoder("dummy-shared", "text", device="meta")
    assert b is not a and b.device == "meta"
    c = shared_encoder("dummy-shared:x", "text")
    assert c is not a and c.spec == "x"
    with pytest.raises(UnknownEncoderError, match="encodes text, not image"):
        shared_encoder("dummy-shared", "image")


def test_shared_encoder_is_created_once_across_threads(scratch_encoders: None) -> None:
    created = []

    class Slow(_DummyEncoder):
        def __init__(self, spec: str = "", device: str = "cpu") -> None:
            time.sleep(0.05)  # widen the window in which a second instance could be made
            created.append(self)
            super().__init__(spec, device)

    register_encoder("dummy-slow")(Slow)
    got: list[Encoder] = []
    threads = [threading.Thread(target=lambda: got.append(shared_encoder("dummy-slow", "text"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(created) == 1 and all(e is created[0] for e in got) and len(got) == 4


# ----------------------------------------------------------------------------- fusion


@pytest.fixture
def scratch_fusions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(FUSIONS, "_entries", dict(FUSIONS._entries))
    yield


def test_fusion_registry_holds_the_builtin_layers() -> None:
    assert list_fusions() == ["attention", "mean"] == FUSIONS.names()
    assert get_fusion_class("mean") is MeanFusion and MeanFusion.registry_name == "mean"
    assert get_fusion_class("attention") is AttentionFusion and AttentionFusion.registry_name == "attention"


def test_unknown_fusion_is_a_readable_key_error() -> None:
    with pytest.raises(UnknownFusionError) as e:
        get_fusion_class("median")
    assert isinstance(e.value, KeyError)
    assert str(e.value) == "unknown fusion layer 'median'; valid names: attention, mean"


def test_register_fusion(scratch_fusions: None) -> None:
    @register_fusion("first")
    class First(FusionLayer):
        def forward(self, bridged: Any, raw: Any, mask: Any) -> FusionOutput:
            raise NotImplementedError

    assert First.registry_name == "first" and "first" in list_fusions()
    layer = create_fusion("first", FusionConfig(dim=4, raw_dims=()))
    assert isinstance(layer, First) and layer.registry_name == "first"
    assert register_fusion("first")(First) is First  # the same class again is fine
    with pytest.raises(ValueError, match="'mean' is already registered by MeanFusion"):
        register_fusion("mean")(First)
    assert get_fusion_class("mean") is MeanFusion and First.registry_name == "first"

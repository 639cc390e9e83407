"""The model manager: load once, budget and eviction, pinning, real release."""

import gc
import threading
import weakref

import pytest

from ipyllmapps.errors import UserError
from ipyllmapps.manager import Bundle
from ipyllmapps.manager.memory import process_rss
from tests.conftest import run

MB = 2**20


def linear_loader(megabytes, calls=None):
    """A loader that builds a float32 linear layer of about ``megabytes`` MB."""

    def load(source, *, device, dtype, offline):
        import torch

        if calls is not None:
            calls.append(source)
        side = int((megabytes * MB / 4) ** 0.5)
        layer = torch.nn.Linear(side, side, bias=False)
        torch.nn.init.normal_(layer.weight)  # touch every page, as real weights do
        return Bundle(model=layer.to(device))

    return load


@pytest.fixture
def manager(shell):
    import ipyllmapps

    return ipyllmapps.manager()


def test_same_source_loads_once(manager):
    calls = []
    entries = [manager.load("a", "demo", linear_loader(1, calls)) for _ in range(5)]
    assert calls == ["a"]
    assert all(e is entries[0] for e in entries)
    assert manager.load_count == 1


def test_concurrent_requests_for_one_key_load_once(manager):
    calls = []
    slow = linear_loader(1, calls)

    def load():
        manager.load("shared", "demo", slow)

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["shared"]
    assert len(manager) == 1


def test_budget_evicts_least_recently_used_unpinned(manager):
    manager.config.models_per_task = 0
    manager.set_budget(f"{int(2.5 * 4)}MB")  # room for two 4 MB models
    load = linear_loader(4)
    manager.load("first", "demo", load)
    manager.load("second", "demo", load)
    manager.load("first", "demo", load)  # now "second" is the least recently used
    manager.load("third", "demo", load)
    assert sorted(r["name"] for r in manager.list()) == ["first", "third"]


def test_pinned_model_is_never_evicted(manager):
    manager.config.models_per_task = 0
    manager.set_budget("10MB")
    load = linear_loader(4)
    manager.load("keep", "demo", load)
    manager.pin("keep")
    manager.load("second", "demo", load)
    manager.load("third", "demo", load)
    names = sorted(r["name"] for r in manager.list())
    assert "keep" in names and "second" not in names


def test_model_larger_than_budget_is_refused_and_nothing_changes(manager):
    manager.config.models_per_task = 0
    manager.set_budget("6MB")
    manager.load("small", "demo", linear_loader(4))
    before = manager.list()
    with pytest.raises(
        UserError, match=r"`huge` needs .* budget .* `%models budget 1GB`"
    ):
        manager.load("huge", "demo", linear_loader(16))
    assert manager.list() == before


def test_estimate_refuses_before_evicting(manager):
    manager.config.models_per_task = 0
    manager.set_budget("6MB")
    manager.load("small", "demo", linear_loader(4))
    with pytest.raises(UserError, match="needs 16 MB"):
        manager.load("huge", "demo", linear_loader(16), estimate=16 * MB)
    assert [r["name"] for r in manager.list()] == ["small"]


def test_switching_model_frees_the_previous_one_first(manager, tmp_path):
    """Case M3: one model of a task at a time, so peak memory is about one model."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    seen = []

    def load(source, *, device, dtype, offline):
        seen.append(manager.used_bytes(device))
        return linear_loader(8)(source, device=device, dtype=dtype, offline=offline)

    for _ in range(5):
        manager.load(str(one), "classify", load)
    manager.load(str(two), "classify", load)
    assert seen == [0, 0]  # nothing held while "two" loaded
    assert [r["name"] for r in manager.list()] == ["two"]


def test_a_source_that_is_not_there_evicts_nothing(manager, tmp_path):
    (tmp_path / "one").mkdir()
    manager.load(str(tmp_path / "one"), "classify", linear_loader(1))

    def missing(source, *, device, dtype, offline):
        raise UserError(f"No file or folder `{source}`: check the path.")

    with pytest.raises(UserError):
        manager.load(str(tmp_path / "typo"), "classify", missing)
    assert [r["name"] for r in manager.list()] == ["one"]


def test_trained_models_start_pinned(manager, tmp_path):
    import torch

    from ipyllmapps.manager import Bundle

    manager.register("mine", Bundle(model=torch.nn.Linear(4, 4)), "classify")
    (tmp_path / "other").mkdir()
    manager.load(str(tmp_path / "other"), "classify", linear_loader(1))
    assert sorted(r["name"] for r in manager.list()) == ["mine", "other"]
    assert manager.get("mine").pinned


def test_failed_load_leaves_nothing(manager):
    def broken(source, *, device, dtype, offline):
        raise UserError("No file or folder `nowhere`: check the path.")

    with pytest.raises(UserError):
        manager.load("nowhere", "demo", broken)
    assert len(manager) == 0
    manager.load("nowhere", "demo", linear_loader(1))  # no stale lock


def test_unload_frees_the_weights(manager):
    entry = manager.load("a", "demo", linear_loader(4))
    weights = weakref.ref(entry.bundle.model)
    del entry
    manager.unload("a")
    assert weights() is None


def test_move_and_pin_keep_the_model(manager):
    manager.load("a", "demo", linear_loader(1))
    manager.pin("a")
    assert manager.list()[0]["pinned"] is True
    manager.pin("a", False)
    assert manager.move("a", "cpu").device == "cpu"


def test_unknown_names_give_one_line(manager):
    with pytest.raises(UserError, match="No model named `ghost`"):
        manager.unload("ghost")


def test_listener_hears_changes(manager):
    events = []
    manager.subscribe(lambda event, name: events.append((event, name)))
    manager.load("a", "demo", linear_loader(1))
    manager.unload("a")
    assert events == [("load", "a"), ("unload", "a")]


# -- memory really comes back (cases M1, M2) ---------------------------------

SIZE_MB = 192


def _settle():
    from ipyllmapps.manager.memory import release_memory

    release_memory()
    return process_rss()


def _warm_up(manager):
    manager.load("warm", "demo", linear_loader(SIZE_MB))
    manager.unload("warm")


def test_rss_returns_to_baseline_after_unload(manager):
    _warm_up(manager)
    baseline = _settle()
    manager.load("big", "demo", linear_loader(SIZE_MB))
    loaded = _settle()
    manager.unload("big")
    after = _settle()
    assert loaded - baseline > 0.8 * SIZE_MB * MB
    assert after - baseline < 0.1 * SIZE_MB * MB


def test_rss_returns_after_failed_forward_pass(shell, manager, capsys):
    """Case M1: the last traceback must not keep the model alive."""
    _warm_up(manager)
    shell.user_ns["loader"] = linear_loader(SIZE_MB)
    baseline = _settle()
    run(
        shell,
        "import ipyllmapps, torch\nipyllmapps.manager().load('big', 'demo', loader)",
    )
    failed = shell.run_cell(
        "model = ipyllmapps.manager().get('big').bundle.model\n"
        "try:\n"
        "    model(torch.zeros(3, 3))\n"
        "finally:\n"
        "    del model"
    )
    assert failed.error_in_exec is not None  # shape mismatch inside forward
    run(shell, "%models unload big")
    assert _settle() - baseline < 0.1 * SIZE_MB * MB


def test_weights_freed_after_handle_echoed_twice(shell, manager):
    """Case M2: Out[n], _, __ and _n must not keep the weights."""
    _warm_up(manager)
    shell.user_ns["loader"] = linear_loader(SIZE_MB)
    baseline = _settle()
    run(shell, "import ipyllmapps\nipyllmapps.manager().load('big', 'demo', loader)")
    shell.run_cell("ipyllmapps.manager().get('big')", store_history=True)
    shell.run_cell("ipyllmapps.manager().get('big')", store_history=True)
    shell.run_cell("_", store_history=True)
    run(shell, "%models unload big")
    gc.collect()
    assert _settle() - baseline < 0.1 * SIZE_MB * MB


def test_variable_still_holding_model_is_named_in_a_warning(shell, manager):
    shell.user_ns["loader"] = linear_loader(1)
    run(
        shell,
        "import ipyllmapps\nm = ipyllmapps.manager().load('a', 'demo', loader)"
        ".bundle.model",
    )
    with pytest.warns(UserWarning, match=r"variable\(s\) m still hold it: `del m`"):
        manager.unload("a")


def test_underscore_keeps_working_after_a_scrub(shell, manager):
    """Case M2: the echoed handle is dropped from every copy IPython keeps."""
    shell.user_ns["loader"] = linear_loader(1)
    run(shell, "import ipyllmapps\nipyllmapps.manager().load('a', 'demo', loader)")
    shell.run_cell("ipyllmapps.manager().get('a').bundle.model", store_history=True)
    shell.run_cell("ipyllmapps.manager().get('a').bundle.model", store_history=True)
    weights = weakref.ref(manager.get("a").bundle.model)
    run(shell, "%models unload a")
    gc.collect()
    assert weights() is None
    shell.run_cell("40 + 2", store_history=True)
    assert shell.user_ns["_"] == 42


def test_traceback_through_a_hook_does_not_keep_the_model(shell, manager):
    """Case M1: a failure inside a forward hook (closures hold the module)."""
    shell.user_ns["loader"] = linear_loader(1)
    run(
        shell,
        "import ipyllmapps, torch\n"
        "model = ipyllmapps.manager().load('a', 'demo', loader).bundle.model\n"
        "def broken(module, inputs):\n"
        "    raise ValueError('injected')\n"
        "model.register_forward_pre_hook(broken)\n"
        "del model, broken",
    )
    weights = weakref.ref(manager.get("a").bundle.model)
    failed = shell.run_cell(
        "ipyllmapps.manager().get('a').bundle.model(torch.zeros(2))"
    )
    assert isinstance(failed.error_in_exec, ValueError)
    run(shell, "%models unload a")
    gc.collect()
    assert weights() is None


def test_a_failed_load_brings_back_what_it_evicted(manager, tmp_path):
    """A corrupt file that exists may evict first; the evicted model comes back."""
    (tmp_path / "good").mkdir()
    (tmp_path / "corrupt.pt").write_bytes(b"not a model")
    manager.load(str(tmp_path / "good"), "classify", linear_loader(1), name="good")

    def corrupt(source, *, device, dtype, offline):
        raise UserError(f"`{source}` is not a model file.")

    with pytest.raises(UserError):
        manager.load(str(tmp_path / "corrupt.pt"), "classify", corrupt)
    assert [r["name"] for r in manager.list()] == ["good"]


def test_weights_on_disk_larger_than_the_budget_are_refused_before_loading(
    manager, tmp_path
):
    manager.set_budget("1MB")
    manager.load("small", "demo", linear_loader(0.5))
    big = tmp_path / "big.safetensors"
    big.write_bytes(b"\0" * (2 * MB))
    calls = []
    with pytest.raises(UserError, match="needs 2.0 MB but the budget on cpu is 1.0 MB"):
        manager.load(str(big), "demo", linear_loader(2, calls))
    assert calls == [] and [r["name"] for r in manager.list()] == ["small"]


def test_bad_dtype_is_one_line_and_changes_nothing(manager):
    manager.load("a", "demo", linear_loader(1))
    with pytest.raises(UserError, match="`int8` is not a dtype: use one of auto"):
        manager.load("b", "demo", linear_loader(1), dtype="int8")
    assert [r["name"] for r in manager.list()] == ["a"]


def test_two_models_trained_on_the_same_data_are_both_kept(manager):
    import torch

    manager.register("first", Bundle(model=torch.nn.Linear(2, 2)), "lm", source="a.txt")
    manager.register(
        "second", Bundle(model=torch.nn.Linear(2, 2)), "lm", source="a.txt"
    )
    assert sorted(r["name"] for r in manager.list()) == ["first", "second"]

"""The kernel side of the JupyterLab sidebar: the ``ipyllmapps.models`` comm.

The comm messages go through the real ``comm.CommManager`` exactly as
ipykernel delivers them; only the transport is replaced by a comm that records
what it would publish to the browser.
"""

import comm
import pytest
from comm.base_comm import BaseComm, CommManager

import ipyllmapps
from ipyllmapps._comm import TARGET
from ipyllmapps.manager import Bundle


class RecordingComm(BaseComm):
    """A kernel-side comm that keeps what it would send to the front end."""

    def __init__(self, *args, **kwargs):
        self.sent = []
        super().__init__(*args, **kwargs)

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        self.sent.append((msg_type, data))

    def messages(self):
        return [data for kind, data in self.sent if kind == "comm_msg"]


class Sidebar:
    """Plays the browser: opens the comm and sends requests, as JupyterLab does."""

    def __init__(self, manager):
        self.manager = manager
        self.count = 0

    def open(self, target=TARGET):
        self.count += 1
        comm_id = f"sidebar-{self.count}"
        self.manager.comm_open(None, None, _msg(comm_id, target_name=target, data={}))
        return self.manager.comms.get(comm_id)

    def request(self, channel, data):
        """Send one request; return the reply (the last message it caused).

        A change also pushes the new state to every open sidebar, this one
        included, before the reply.
        """
        before = len(channel.messages())
        self.manager.comm_msg(None, None, _msg(channel.comm_id, data=data))
        replies = channel.messages()[before:]
        assert replies, f"no reply to {data!r}"
        return replies[-1]

    def close(self, channel):
        self.manager.comm_close(None, None, _msg(channel.comm_id, data={}))


def _msg(comm_id, **content):
    return {"content": {"comm_id": comm_id, **content}, "header": {}, "metadata": {}}


@pytest.fixture
def kernel(shell, monkeypatch):
    """The shell as a kernel sees it: a comm manager, the extension reloaded into it."""
    manager = CommManager()
    monkeypatch.setattr(comm, "_comm_manager", manager)
    monkeypatch.setattr(comm, "create_comm", RecordingComm)
    shell.kernel = object()  # what makes `_comm` look for the comm manager
    ipyllmapps.load_ipython_extension(shell)
    yield Sidebar(manager)
    ipyllmapps.unload_ipython_extension(shell)
    del shell.kernel


def _hold(name="toy", nbytes=3 * 2**20):
    """Register a small model that needs no torch (its size is given)."""
    bundle = Bundle(model=object(), framework="onnx", nbytes=nbytes, num_parameters=42)
    entry = ipyllmapps.manager().register(name, bundle, "classify")
    entry.pinned = False  # registered models start pinned; these tests pin them
    return entry


def test_load_ext_registers_the_target_and_unload_removes_it(shell, kernel):
    assert TARGET in kernel.manager.targets
    ipyllmapps.unload_ipython_extension(shell)
    assert TARGET not in kernel.manager.targets
    ipyllmapps.load_ipython_extension(shell)  # for the fixture's teardown


def test_opening_sends_the_state_at_once(kernel):
    _hold()
    channel = kernel.open()
    [state] = channel.messages()
    assert state["type"] == "state"
    [model] = state["models"]
    assert model["name"] == "toy"
    assert model["task"] == "classify"
    assert model["bytes"] == 3 * 2**20
    assert model["pinned"] is False
    [cpu] = [d for d in state["devices"] if d["device"] == "cpu"]
    assert cpu["used"] == 3 * 2**20
    assert cpu["total"] >= cpu["free"] > 0


def test_an_unknown_target_is_closed_by_the_kernel(kernel):
    assert kernel.open("ipyllmapps.other") is None


def test_list_answers_with_the_state(kernel):
    channel = kernel.open()
    assert kernel.request(channel, {"action": "list"})["models"] == []
    _hold()
    names = [m["name"] for m in kernel.request(channel, {"action": "list"})["models"]]
    assert names == ["toy"]


def test_unload_frees_the_model_and_answers_with_the_state(kernel):
    _hold("toy")
    _hold("other")
    channel = kernel.open()
    reply = kernel.request(channel, {"action": "unload", "name": "toy"})
    assert reply["type"] == "state"
    assert [m["name"] for m in reply["models"]] == ["other"]
    assert "toy" not in ipyllmapps.manager()


def test_pin_and_unpin(kernel):
    _hold()
    channel = kernel.open()
    reply = kernel.request(channel, {"action": "pin", "name": "toy"})
    assert reply["models"][0]["pinned"] is True
    assert ipyllmapps.manager().get("toy").pinned
    reply = kernel.request(channel, {"action": "unpin", "name": "toy"})
    assert reply["models"][0]["pinned"] is False


def test_move_to_the_same_device_keeps_the_model(kernel):
    _hold()
    channel = kernel.open()
    reply = kernel.request(channel, {"action": "move", "name": "toy", "device": "cpu"})
    assert [(m["name"], m["device"]) for m in reply["models"]] == [("toy", "cpu")]


def test_move_to_a_device_that_does_not_exist_is_a_one_line_error(kernel):
    _hold()
    channel = kernel.open()
    request = {"action": "move", "name": "toy", "device": "cpu:1"}
    reply = kernel.request(channel, request)
    assert reply["type"] == "error"
    assert reply["action"] == "move"
    assert reply["message"].startswith("`cpu:1` is not a device: use `cpu`")
    assert "\n" not in reply["message"]
    assert ipyllmapps.manager().get("toy").device == "cpu"


def test_a_request_for_a_missing_model_names_what_is_loaded(kernel):
    _hold()
    channel = kernel.open()
    reply = kernel.request(channel, {"action": "unload", "name": "nope"})
    assert reply["type"] == "error"
    assert reply["action"] == "unload"
    assert reply["message"] == "No model named `nope` is loaded: loaded are `toy`."


@pytest.mark.parametrize(
    "request_",
    [
        {"action": "load", "source": "minilm", "task": "embed"},
        {"action": "budget", "size": "1KB"},
        {"action": "exec", "code": "import os"},
        {"action": "unload_all"},
        {},
        {"name": "toy"},
    ],
)
def test_anything_else_is_refused_and_changes_nothing(kernel, request_):
    _hold()
    channel = kernel.open()
    budget = ipyllmapps.manager().config.budget
    reply = kernel.request(channel, request_)
    assert len(channel.messages()) == 2  # the state on opening, then the refusal
    assert reply == {
        "type": "error",
        "action": request_.get("action"),
        "message": f"unknown request `{request_.get('action')}`",
    }
    assert [m["name"] for m in ipyllmapps.manager().list()] == ["toy"]
    assert ipyllmapps.manager().config.budget == budget


def test_a_request_that_is_not_an_object_is_refused(kernel):
    channel = kernel.open()
    reply = kernel.request(channel, ["unload", "toy"])
    assert reply["type"] == "error"
    assert reply["message"] == "unknown request `None`"


def test_every_change_pushes_a_fresh_state_to_every_open_sidebar(shell, kernel):
    first, second = kernel.open(), kernel.open()
    ipyllmapps.manager().register("toy", Bundle(model=object(), nbytes=1), "classify")
    shell.run_line_magic("models", "unpin toy")  # registered models start pinned
    shell.run_line_magic("models", "unload toy")
    for channel in (first, second):
        pushed = channel.messages()[1:]  # after the state sent on opening
        assert [[m["name"] for m in p["models"]] for p in pushed] == [
            ["toy"],
            ["toy"],
            [],
        ]
        assert [p["models"][0]["pinned"] for p in pushed[:2]] == [True, False]


def test_a_closed_sidebar_gets_nothing_more(kernel):
    channel = kernel.open()
    kernel.close(channel)
    _hold()
    assert len(channel.messages()) == 1


def test_bank_lists_the_question_summaries(kernel, monkeypatch):
    class Question:
        def __init__(self, n):
            self.n = n

        def summary(self):
            return {
                "id": f"q{self.n}",
                "title": f"Question {self.n}",
                "topic": "Basics",
                "kind": "open",
            }

    class Bank:
        items = [Question(1), Question(2)]

    asked = []

    def load_bank(lang):
        asked.append(lang)
        return Bank()

    monkeypatch.setattr("ipyllmapps.bank.load_bank", load_bank, raising=False)
    channel = kernel.open()
    reply = kernel.request(channel, {"action": "bank", "lang": "en"})
    assert reply == {"type": "bank", "items": [q.summary() for q in Bank.items]}
    assert kernel.request(channel, {"action": "bank"})["type"] == "bank"
    assert asked == ["en", "en"]


def test_a_failing_bank_answers_with_an_error_not_silence(kernel, monkeypatch, caplog):
    def load_bank(lang):
        raise RuntimeError("bank file is corrupt")

    monkeypatch.setattr("ipyllmapps.bank.load_bank", load_bank, raising=False)
    channel = kernel.open()
    reply = kernel.request(channel, {"action": "bank", "lang": "en"})
    assert reply == {
        "type": "error",
        "action": "bank",
        "message": "RuntimeError: bank file is corrupt",
    }
    assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)


def test_insert_cell_reaches_every_open_sidebar(kernel):
    channel = ipyllmapps._running.comm
    assert channel.insert_cell("%ask q1") is False  # no sidebar open yet
    first = kernel.open()
    assert channel.insert_cell("%gan_sample 16") is True
    assert first.messages()[-1] == {"type": "insert", "code": "%gan_sample 16"}

"""``%%chat``, ``%generate`` and ``%finetune lm`` with a tiny GPT-2 built in code."""

import re
import subprocess
import sys
import threading

import pytest

from tests.conftest import run, usage_error

TWELVE_WORDS = "the movie was good but the food was bad and i hate"


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    """A 2-layer GPT-2 folder (128-token context, no chat template)."""
    from tests.factory import Factory

    folder = Factory(tmp_path_factory.mktemp("lm")).gpt2()
    return str(folder)


@pytest.fixture
def watched_views(monkeypatch):
    """Record every value a ChatView's ``text`` takes, and whether it was streaming."""
    from ipyllmapps.widgets import chat

    views = []

    class WatchedView(chat.ChatView):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.seen = []
            self.observe(lambda c: self.seen.append((c["new"], self.streaming)), "text")
            views.append(self)

    monkeypatch.setattr(chat, "ChatView", WatchedView)
    return views


def _magics(shell):
    return shell.magics_manager.registry["ChatMagics"]


def _loops(text, size=10):
    """Whether some run of ``size`` characters occurs twice without overlapping."""
    text = text.replace("\ufffd", "")  # bytes that are not whole characters
    first = {}
    for i in range(len(text) - size + 1):
        start = first.setdefault(text[i : i + size], i)
        if i - start >= size:
            return True
    return False


# -- %generate -------------------------------------------------------------------


def test_batched_prompts_give_what_they_give_alone(shell, gpt2, capsys, caplog):
    """T2: greedy, a short and a twelve-word prompt batched with left padding."""
    flags = f"-m {gpt2} --temperature 0 -n 1 --max-new-tokens 12 --seed 0"
    run(shell, f"%%generate {flags} -o both\nHi\n{TWELVE_WORDS}")
    run(shell, f"%generate {flags} -o short Hi")
    run(shell, f"%generate {flags} -o long {TWELVE_WORDS}")
    both = shell.user_ns["both"]
    assert list(both["prompt"]) == ["Hi", TWELVE_WORDS]
    assert both["text"][0] == shell.user_ns["short"]["text"][0]
    assert both["text"][1] == shell.user_ns["long"]["text"][0]
    assert both["text"][0] != both["text"][1]

    captured = capsys.readouterr()
    shown = captured.out + captured.err + caplog.text
    assert "pad_token" not in shown and "pad token" not in shown
    assert f"Prompt: {TWELVE_WORDS}" in captured.out  # the text fallback


def test_defaults_do_not_loop(shell, gpt2):
    """T3: the default settings never repeat a run of text; bare greedy does."""
    run(
        shell,
        f"%generate -m {gpt2} --max-new-tokens 40 --seed 3 -o out nice to meet you",
    )
    out = shell.user_ns["out"]
    assert len(out) == 5  # five continuations, as in the seed
    assert len(set(out["text"])) > 1
    for text in out["text"]:
        assert not _loops(text), text

    run(
        shell,
        f"%generate -m {gpt2} --max-new-tokens 40 --temperature 0 -n 1 "
        "--no-repeat-ngram 0 -o bare nice to meet you",
    )
    assert _loops(shell.user_ns["bare"]["text"][0])


def test_seed_makes_sampling_reproducible(shell, gpt2):
    for name in ("a", "b"):
        run(
            shell,
            f"%generate -m {gpt2} -n 2 --seed 7 --max-new-tokens 10 -o {name} hello",
        )
    assert list(shell.user_ns["a"]["text"]) == list(shell.user_ns["b"]["text"])


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("%generate", "`%generate` needs a prompt"),
        ("%%generate\n\n   \n", "The `%%generate` cell is empty"),
        ("%%generate stray words\nHi", "move `stray words` into the cell"),
        ("%generate -n 0 hi", "`-n` must be at least 1"),
        ("%generate --temperature -1 hi", "`--temperature` must be 0 (greedy) or more"),
        ("%generate --top-p 2 hi", "`--top-p` must be in (0, 1]"),
        ("%generate -o 1x hi", "`-o 1x` is not a variable name"),
        ("%generate --beams 3 hi", "unrecognized arguments: --beams"),
        ("%generate -m ./no/such/folder hi", "No file or folder `./no/such/folder`"),
        ("%generate ''", "`%generate` needs a prompt"),
        ("%generate '   '", "`%generate` needs a prompt"),
        ("%generate --temperature inf hi", "`--temperature` must be 0 (greedy) or"),
        ("%generate --temperature nan hi", "`--temperature` must be 0 (greedy) or"),
        ("%generate --temperature 11 hi", "or more, up to 10, like 0.7"),
        ("%generate --top-p nan hi", "`--top-p` must be in (0, 1]"),
        ("%generate --top-p 0 hi", "`--top-p` must be in (0, 1]"),
        ("%generate --top-p inf hi", "`--top-p` must be in (0, 1]"),
        (
            "%generate hi --seed 99999999999999999999",
            "`--seed 99999999999999999999`: use a whole number from 0 to 4294967295",
        ),
        ("%generate hi --seed -1", "`--seed -1`: use a whole number from 0"),
        ("%generate -n 100000 hi", "`-n 100000` is too many: at most 50"),
        ("%generate -n 51 hi", "`-n 51` is too many: at most 50"),
    ],
)
def test_generate_mistakes_are_one_line(shell, capsys, cell, expected):
    assert expected in usage_error(shell, cell, capsys)
    assert len(__import__("ipyllmapps").manager()) == 0  # refused before loading


def test_empty_prompt_is_refused_with_the_model_given(shell, gpt2, capsys):
    """An empty quoted prompt used to reach the model and fail to reshape."""
    line = usage_error(shell, f"%generate -m {gpt2} ''", capsys)
    assert line.endswith(
        "`%generate` needs a prompt: `%generate What is your favorite color?`."
    )


def test_prompt_of_no_tokens_is_one_line(gpt2):
    from ipyllmapps.errors import UserError
    from ipyllmapps.models import lm

    bundle = lm.load(gpt2, device="cpu", dtype="float32", offline=True)
    with pytest.raises(UserError, match="A prompt is empty: type words to continue"):
        lm.generate(bundle, ["hi", ""], lm.Sampling(max_new_tokens=2))


def test_seed_range_ends_are_accepted(shell, gpt2, capsys):
    run(shell, f"%generate -m {gpt2} -n 1 --max-new-tokens 2 --seed 0 -o a hi")
    run(shell, f"%generate -m {gpt2} -n 1 --max-new-tokens 2 --seed 4294967295 hi")
    line = usage_error(shell, f"%%chat -m {gpt2} --seed 4294967296\nhi", capsys)
    assert "`--seed 4294967296`: use a whole number from 0 to 4294967295" in line


def test_max_new_tokens_must_fit_the_context(shell, gpt2, capsys):
    """The tiny GPT-2 reads 128 tokens: 500 new ones are refused before work."""
    line = usage_error(shell, f"%generate -m {gpt2} --max-new-tokens 500 hi", capsys)
    assert line.startswith(
        "UsageError: `--max-new-tokens 500` does not fit: the model reads 128 tokens"
    )
    assert "use `--max-new-tokens 50` or a shorter prompt" in line
    assert "tiny-gpt2" in __import__("ipyllmapps").manager()  # still loaded
    run(shell, f"%generate -m {gpt2} -n 1 --max-new-tokens 120 --seed 0 -o out hi")
    assert len(shell.user_ns["out"]) == 1


def test_a_classifier_folder_is_not_a_language_model(shell, factory, gpt2, capsys):
    """A BERT sentence classifier used to load as a causal LM and babble."""
    import ipyllmapps

    run(shell, f"%models load {gpt2} --task lm")
    bert = factory.bert_classifier()
    capsys.readouterr()  # the factory's progress bars
    for cell in (f"%generate -m {bert} hi", f"%%chat -m {bert}\nhi"):
        line = usage_error(shell, cell, capsys)
        assert (
            f"`{bert}` holds a BertForSequenceClassification, not a causal "
            "language model: use `smollm2`"
        ) in line
    assert [r["name"] for r in ipyllmapps.manager().list()] == ["tiny-gpt2"]


def test_prompts_are_not_expanded(shell, gpt2):
    shell.user_ns["word"] = "EXPANDED"
    run(shell, f"%generate -m {gpt2} -n 1 --max-new-tokens 2 -o out {{word}} $word")
    assert shell.user_ns["out"]["prompt"][0] == "{word} $word"


# -- %%chat ----------------------------------------------------------------------


def test_reply_streams_into_the_view(shell, gpt2, watched_views):
    run(shell, f"%%chat -m {gpt2} --max-new-tokens 40 --seed 1\nhello how are you")
    (view,) = watched_views
    growing = [text for text, streaming in view.seen if streaming]
    assert len(growing) >= 3, view.seen
    assert all(a != b and b.startswith(a) for a, b in zip(growing, growing[1:]))
    assert not view.streaming
    turns = _magics(shell).conversations["tiny-gpt2"].turns
    assert [t["role"] for t in turns] == ["user", "assistant"]
    assert turns[0]["content"] == "hello how are you"
    assert turns[1]["content"] == view.text
    assert "characters in" in view.status


def test_stop_button_ends_the_reply(shell, gpt2, watched_views, monkeypatch):
    from ipyllmapps.widgets import chat

    class StoppedView(chat.ChatView):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.observe(lambda c: self._stop.click(), "text")

    monkeypatch.setattr(chat, "ChatView", StoppedView)
    run(shell, f"%%chat -m {gpt2} --max-new-tokens 100 --seed 1\nhello")
    view = _magics(shell).views["tiny-gpt2"]
    assert view.status.startswith("stopped")
    from ipyllmapps.models import lm

    reply = _magics(shell).conversations["tiny-gpt2"].turns[-1]["content"]
    entry = __import__("ipyllmapps").manager().get("tiny-gpt2")
    assert lm.count_tokens(entry.bundle, reply) < 50


def test_a_failed_reply_shows_under_its_view(shell, gpt2, monkeypatch):
    from ipyllmapps.models import lm

    def failing(*args, **kwargs):
        yield "partial "
        raise RuntimeError("boom")

    monkeypatch.setattr(lm, "stream", failing)
    result = shell.run_cell(f"%%chat -m {gpt2}\nhello")
    assert isinstance(result.error_in_exec, RuntimeError)
    view = _magics(shell).views["tiny-gpt2"]
    assert view.text == "partial " and not view.streaming
    assert "Error: boom" in view.output.outputs[0]["text"]
    assert _magics(shell).conversations["tiny-gpt2"].turns == []


def test_history_is_kept_and_trimmed_with_a_notice(shell, gpt2, capsys):
    message = " ".join(["the movie was good"] * 8)  # about 30 tokens
    for _ in range(4):
        run(shell, f"%%chat -m {gpt2} --max-new-tokens 30 --seed 2\n{message}")
    out = capsys.readouterr().out
    assert "oldest exchange(s) were dropped to fit tiny-gpt2's 128-token context" in out
    conversation = _magics(shell).conversations["tiny-gpt2"]
    assert 2 <= len(conversation.turns) < 8

    run(shell, f"%chat -m {gpt2} --history")
    out = capsys.readouterr().out
    assert "Conversation with tiny-gpt2" in out
    assert out.count(f"You: {message}") == len(conversation.turns) // 2

    run(shell, f"%chat -m {gpt2} --reset")
    assert conversation.turns == []
    assert "was cleared" in capsys.readouterr().out


def test_reset_of_a_model_never_chatted_with_says_so(shell, capsys):
    run(shell, "%chat --reset -m neverloaded")
    out = capsys.readouterr().out
    assert "There was no conversation with neverloaded to clear." in out
    assert "was cleared" not in out
    assert _magics(shell).conversations == {}
    assert len(__import__("ipyllmapps").manager()) == 0


def test_system_prompt_and_plain_dialogue_format(shell, gpt2):
    from ipyllmapps.models import lm

    run(shell, f'%chat -m {gpt2} --system "You are a patient tutor"')
    conversation = _magics(shell).conversations["tiny-gpt2"]
    assert conversation.system == "You are a patient tutor"
    bundle = __import__("ipyllmapps").manager().get("tiny-gpt2").bundle
    assert not bundle.has_chat_template
    conversation.turns = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]
    prompt = bundle.tokenizer.decode(
        lm.chat_prompt(bundle, conversation, "how are you")
    )
    assert prompt == (
        "You are a patient tutor\n\nUser: hi\nAssistant: hello\n"
        "User: how are you\nAssistant:"
    )
    assert lm.clean_reply(bundle, " fine thanks\nUser: and") == "fine thanks"


def test_chat_template_is_used_when_the_model_has_one(shell, gpt2):
    from ipyllmapps.models import lm

    run(shell, f"%models load {gpt2} --task lm")
    bundle = __import__("ipyllmapps").manager().get("tiny-gpt2").bundle
    bundle.tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    conversation = lm.Conversation(system="be brief")
    prompt = bundle.tokenizer.decode(lm.chat_prompt(bundle, conversation, "hi"))
    assert prompt == "<system>be brief\n<user>hi\n<assistant>"


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("%%chat\n   \n", "The `%%chat` cell is empty"),
        ("%chat", "`%chat` needs a message"),
        ("%%chat --temperature -2\nhi", "`--temperature` must be 0 (greedy) or more"),
        ("%%chat --max-new-tokens 0\nhi", "`--max-new-tokens` must be at least 1"),
        ("%%chat --system 'unclosed\nhi", "No closing quotation"),
        ("%%chat --colour red\nhi", "unrecognized arguments: --colour red"),
        ("%%chat --temperature nan\nhi", "`--temperature` must be 0 (greedy) or"),
        ("%%chat --top-p inf\nhi", "`--top-p` must be in (0, 1]"),
        ("%%chat --seed -3\nhi", "`--seed -3`: use a whole number from 0"),
    ],
)
def test_chat_mistakes_are_one_line(shell, capsys, cell, expected):
    assert expected in usage_error(shell, cell, capsys)


def test_too_long_for_the_context_is_one_line(shell, gpt2, capsys):
    run(shell, f"%models load {gpt2} --task lm")
    capsys.readouterr()
    line = usage_error(shell, f"%%chat -m {gpt2} --max-new-tokens 128\nhi", capsys)
    assert "`--max-new-tokens 128` leaves no room for the prompt" in line
    line = usage_error(
        shell, f"%%chat -m {gpt2} --max-new-tokens 20\n" + "the movie " * 80, capsys
    )
    assert "shorten it, or lower `--max-new-tokens`" in line


# -- %finetune lm ----------------------------------------------------------------


def test_finetune_lm_lowers_the_loss(shell, gpt2, tmp_path, capsys):
    dialogue = tmp_path / "dialogue.txt"
    lines = [
        "User: hello how are you",
        "Assistant: i am very happy, and you?",
        "User: what is overfitting",
        "Assistant: the model learns the train data",
    ]
    dialogue.write_text("\n".join(lines * 6) + "\n")
    saved = tmp_path / "chatty"
    run(
        shell,
        f"%finetune lm --data {dialogue} --base {gpt2} --block-size 32 "
        f"--epochs 3 --lr 3e-3 --name chatty --save {saved} -o losses",
    )
    out = capsys.readouterr().out
    before, after = map(
        float, re.search(r"loss ([\d.]+) → ([\d.]+) after 3", out).groups()
    )
    assert after < before * 0.8, out
    losses = shell.user_ns["losses"]
    assert list(losses["epoch"]) == [1, 2, 3]
    assert losses["loss"].iloc[-1] < losses["loss"].iloc[0]
    assert "chatty" in __import__("ipyllmapps").manager()
    assert (saved / "config.json").is_file()

    run(shell, "%generate -m chatty -n 1 --max-new-tokens 5 -o out hello")
    assert len(shell.user_ns["out"]) == 1


@pytest.mark.parametrize(
    "line, expected",
    [
        ("--data missing.txt", "No file `missing.txt`"),
        ("", "the following arguments are required: --data"),
        ("--data {txt} --epochs 0", "`--epochs` must be at least 1"),
        ("--data {txt} --block-size 2", "`--block-size` must be at least 8"),
        (
            "--data {txt} --lr inf",
            "`--lr inf` must be above 0 and at most 1: try `--lr 5e-5`",
        ),
        ("--data {txt} --lr nan", "`--lr nan` must be above 0 and at most 1"),
        ("--data {txt} --lr 0", "`--lr 0` must be above 0 and at most 1"),
        ("--data {txt} --lr 5", "`--lr 5` must be above 0 and at most 1"),
        ("--data {txt} --epochs -2", "`--epochs` must be at least 1"),
    ],
)
def test_finetune_lm_mistakes_are_one_line(shell, tmp_path, capsys, line, expected):
    txt = tmp_path / "a.txt"
    txt.write_text("hello")
    line = line.replace("{txt}", str(txt))
    assert expected in usage_error(shell, f"%finetune lm {line}", capsys)
    assert len(__import__("ipyllmapps").manager()) == 0  # nothing loaded or kept


def test_finetune_lm_keeps_no_diverged_model(
    shell, gpt2, tmp_path, monkeypatch, capsys
):
    """A run whose loss ends as NaN registers and saves nothing."""
    import math

    from ipyllmapps.models import lm

    data = tmp_path / "a.txt"
    data.write_text("hello how are you\n" * 8)
    real_mean_loss = lm.mean_loss
    calls = []

    def diverged(model, blocks, batch_size):  # the loss after training is NaN
        calls.append(1)
        return (
            real_mean_loss(model, blocks, batch_size) if len(calls) == 1 else math.nan
        )

    monkeypatch.setattr(lm, "mean_loss", diverged)
    saved = tmp_path / "bad"
    run(
        shell,
        f"%finetune lm --data {data} --base {gpt2} --block-size 8 --epochs 1 "
        f"--name bad --save {saved}",
    )
    out = capsys.readouterr().out
    assert "the loss became nan (training diverged); nothing was kept" in out
    assert "bad" not in __import__("ipyllmapps").manager()
    assert not saved.exists()


# -- loading ---------------------------------------------------------------------


def test_gguf_conversion_is_cached_and_atomic(tmp_path, monkeypatch, gpt2):
    import shutil

    from ipyllmapps.models import lm

    monkeypatch.setenv("IPYLLMAPPS_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "Tiny-Model.Q4.gguf"
    gguf.write_bytes(b"GGUF")
    calls = []

    def convert(source, folder):
        calls.append(source)
        shutil.copytree(gpt2, folder, dirs_exist_ok=True)

    def broken(source, folder):
        (folder / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    folder = lm.cached_gguf(gguf, convert)
    assert folder.parent == tmp_path / "cache" and folder.name.startswith("tiny-model-")
    assert lm.cached_gguf(gguf, convert) == folder
    assert len(calls) == 1
    bundle = lm.load(str(gguf), device="cpu", dtype="float32", offline=True)
    assert bundle.context == 128 and len(calls) == 1

    gguf.write_bytes(b"GGUF changed")
    with pytest.raises(RuntimeError):
        lm.cached_gguf(gguf, broken)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [folder.name]


def test_loading_the_package_leaves_torch_out():
    code = (
        "import sys, ipyllmapps.magics.chat, ipyllmapps.widgets.chat, "
        "ipyllmapps.models.lm; print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


# -- the bundled model -------------------------------------------------------------


@pytest.mark.real
def test_smollm2_answers_on_topic_while_streaming(shell, watched_views):
    run(shell, "%%chat --max-new-tokens 40 --temperature 0\nWhat is overfitting?")
    (view,) = watched_views
    growing = [text for text, streaming in view.seen if streaming]
    assert len(growing) >= 3
    bundle = __import__("ipyllmapps").manager().get("smollm2").bundle
    assert bundle.has_chat_template  # it survived the conversion to safetensors
    reply = view.text.lower()
    assert sum(w in reply for w in ("model", "data", "train", "fit", "learn")) >= 2, (
        reply
    )
    assert not any(t.name.startswith("ipyllmapps-") for t in threading.enumerate())


def test_next_cell_waits_for_a_streaming_reply(shell, gpt2):
    """A reply streaming in the background ends before the next cell runs."""
    from ipyllmapps.widgets.chat import ChatView

    magics = shell.magics_manager.registry["ChatMagics"]
    release = threading.Event()
    view = ChatView("tiny", "hello").show()

    def pieces():
        release.wait(5)
        yield "done"

    view.stream(pieces())
    magics.views["tiny"] = view
    threading.Timer(0.3, release.set).start()
    run(shell, "after = 1")
    assert view.text == "done" and not view.streaming

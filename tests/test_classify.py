"""``%%classify``, ``%classify`` and ``%finetune classify``."""

import csv
import subprocess
import sys

import pytest
from IPython.utils.capture import capture_output

from tests.conftest import run, usage_error

POSITIVE = [
    "I love this, it made my whole day wonderful.",
    "The food was delicious and the staff were so kind.",
    "What a fantastic movie, I would happily watch it again.",
    "Thank you so much, this is the best present ever!",
    "We had a great time at the beach, everyone was happy.",
]
NEGATIVE = [
    "This is the worst service I have ever had.",
    "The film was boring and a complete waste of time.",
    "I hate waiting in the rain for a bus that never comes.",
    "The food was cold, bland and terribly overpriced.",
    "My phone broke again and support was rude and useless.",
]


@pytest.fixture
def tiny(factory):
    return factory.bert_classifier()


def cell(magic_line, lines):
    return magic_line + "\n" + "\n".join(lines) + "\n"


def outputs(ip, source):
    """Run a cell and return the mime bundles it displayed."""
    with capture_output() as captured:
        run(ip, source)
    return [output.data for output in captured.outputs]


# -- the bundled default and zero-shot (real MiniLM) -----------------------------


@pytest.mark.real
def test_default_model_labels_clear_sentiment(shell):
    run(shell, cell("%%classify -o res", POSITIVE + NEGATIVE))
    res = shell.user_ns["res"]
    assert list(res["label"]) == ["positive"] * 5 + ["negative"] * 5
    assert (res["score"] > 0.5).all()
    assert shell.user_ns["res"]["scores"][0].keys() == {"positive", "negative"}


@pytest.mark.real
def test_zero_shot_topics_offline(shell):
    headlines = [
        "The striker scored twice as United won the cup final.",
        "Parliament votes on the new election law after a heated debate.",
        "The company unveiled a faster smartphone chip and new software.",
    ]
    run(shell, cell("%%classify --labels sports,politics,technology -o res", headlines))
    res = shell.user_ns["res"]
    assert list(res["label"]) == ["sports", "politics", "technology"]
    for scores in res["scores"]:
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.real
def test_p1_quoted_labels_with_spaces_arrive_whole(shell):
    run(shell, '%classify --labels "very good,very bad" -o res What a lovely present')
    record = shell.user_ns["res"].iloc[0]
    assert set(record["scores"]) == {"very good", "very bad"}
    assert record["label"] == "very good"


@pytest.mark.real
def test_t1_long_emoji_and_cjk_lines_with_the_default_model(shell):
    lines = [
        " ".join(["remarkable"] * 3000),
        "😀" * 50,
        "今天天气很好，我们去公园散步。",
    ]
    run(shell, cell("%%classify -o res", lines))
    res = shell.user_ns["res"]
    assert list(res["truncated"]) == [True, False, False]
    assert set(res["label"]) <= {"positive", "negative"} and len(res) == 3


# -- any sequence-classification model (tiny BERT from the factory) ---------------


def test_t1_every_line_labelled_and_long_ones_marked(shell, tiny):
    lines = [" ".join(["good"] * 3000), "😀" * 50, "今天天气很好，我们去公园散步吧。"]
    run(shell, cell(f"%%classify -m {tiny} -o res", lines))
    res = shell.user_ns["res"]
    assert list(res["text"]) == lines
    assert list(res["truncated"]) == [True, False, False]
    assert set(res["label"]) <= {"negative", "positive"}


def test_batched_sorted_results_equal_one_text_at_a_time(shell, tiny):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts = [
        "good",
        "the movie was not very good but the food was great",
        "bad",
        "i hate this film and the service",
        "hello how are you",
    ]
    run(shell, cell(f"%%classify -m {tiny} --batch-size 2 -o res", texts))
    model = AutoModelForSequenceClassification.from_pretrained(tiny).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    for text, scores in zip(texts, shell.user_ns["res"]["scores"]):
        with torch.no_grad():
            expected = model(**tokenizer(text, return_tensors="pt")).logits.softmax(-1)[
                0
            ]
        assert scores["negative"] == pytest.approx(expected[0].item(), abs=1e-5)
        assert scores["positive"] == pytest.approx(expected[1].item(), abs=1e-5)


def test_p3_blank_lines_are_skipped(shell, tiny):
    run(shell, f"%%classify -m {tiny} -o res\n\ngood\n   \n\t\nbad\n\n")
    assert list(shell.user_ns["res"]["text"]) == ["good", "bad"]


@pytest.mark.parametrize("body", ["\n\n", "   \n  \n", "\t\n", "  "])
def test_p3_blank_cell_is_one_line_error(shell, tiny, capsys, body):
    line = usage_error(shell, f"%%classify -m {tiny}\n{body}", capsys)
    assert "has no text" in line and "one text per line" in line


def test_p3_empty_cell_is_one_line_error(shell, capsys):
    line = usage_error(shell, "%%classify\n", capsys)
    assert "the cell body is empty" in line  # IPython's own message


@pytest.mark.parametrize(
    "source, expected",
    [
        ("%classify", "`%classify` needs a text"),
        ('%classify -m x "unclosed', "close the quote"),
        ("%classify --labels sports hello", "needs at least two labels"),
        ("%classify -k 0 hello", "`-k 0` must be at least 1"),
        ("%classify --batch-size 0 hello", "`--batch-size 0` must be at least 1"),
        ("%classify --colour red hello", "unrecognized arguments: --colour"),
        (
            '%classify --labels a,b --template "About {x}." hi',
            "needs one `{}` where the",
        ),
        (
            '%classify --labels a,b --template "No label." hi',
            "needs one `{}` where the",
        ),
        ("%classify -m ./no/such/folder hello", "No file or folder `./no/such/folder`"),
        (
            "%%classify text on the line\nbody",
            "move `text on the line` into the cell body",
        ),
    ],
)
def test_user_mistakes_are_one_line(shell, capsys, source, expected):
    assert expected in usage_error(shell, source, capsys)


def test_labels_need_an_nli_model(shell, tiny, capsys):
    run(shell, f"%classify -m {tiny} good")  # load it first: the error is then alone
    capsys.readouterr()
    line = usage_error(shell, f"%classify -m {tiny} --labels a,b good", capsys)
    assert "is not an NLI model (its labels are negative, positive)" in line
    assert "drop `-m`" in line


def test_nli_model_runs_the_zero_shot_pipeline(shell, factory):
    nli = factory.bert_classifier(
        labels=("entailment", "neutral", "contradiction"), name="tiny-nli"
    )
    run(
        shell,
        cell(
            f"%%classify -m {nli} --labels sports,politics -o res",
            ["the game", "the vote"],
        ),
    )
    res = shell.user_ns["res"]
    for scores in res["scores"]:
        assert set(scores) == {"sports", "politics"}
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-4)


def test_top_k_and_multi_label(shell, factory):
    model = factory.bert_classifier(labels=("a", "b", "c", "d"), name="four")
    run(shell, f"%classify -m {model} -k 2 --multi-label -o res good film")
    record = shell.user_ns["res"].iloc[0]
    assert len(record["scores"]) == 2
    assert list(record["scores"].values()) == sorted(
        record["scores"].values(), reverse=True
    )
    assert set(record["labels"]) >= {k for k, v in record["scores"].items() if v >= 0.5}
    run(shell, f"%classify -m {model} --multi-label -o res good film")
    assert sum(shell.user_ns["res"].iloc[0]["scores"].values()) > 1.2  # four sigmoids


def test_rerun_reuses_the_loaded_model(shell, tiny):
    from ipyllmapps import manager as get_manager

    manager = get_manager()
    for _ in range(3):
        run(shell, f"%%classify -m {tiny}\ngood\nbad")
    assert manager.load_count == 1


def test_widget_and_fallbacks(shell, tiny):
    shown = outputs(shell, f"%%classify -m {tiny} -k 1\ngood\nbad film\nhello")
    bundle = shown[-1]
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "3 line(s):" in bundle["text/plain"]
    assert "bad film" in bundle["text/html"] and "%" in bundle["text/html"]


def test_view_filters_rows_by_label():
    from ipyllmapps.widgets.classify import ClassifyView, text_view

    records = [
        {
            "text": "yay",
            "label": "positive",
            "score": 0.9,
            "scores": {"positive": 0.9, "negative": 0.1},
            "truncated": False,
        },
        {
            "text": "boo",
            "label": "negative",
            "score": 0.8,
            "scores": {"negative": 0.8, "positive": 0.2},
            "truncated": True,
        },
    ]
    view = ClassifyView(records, title="demo")
    assert [value for _, value in view.filter.options] == [
        "all",
        "positive",
        "negative",
    ]
    view.filter.value = "negative"
    assert "boo" in view.rows.value and "yay" not in view.rows.value
    assert "[truncated]" in view.rows.value
    text = text_view(records)
    assert "positive 1 · negative 1" in text and "boo [truncated]" in text


def test_help_prints_the_docstring(shell, capsys):
    run(shell, "%classify --help")
    assert "Examples" in capsys.readouterr().out


def test_importing_the_magics_leaves_torch_out():
    code = (
        "import sys, ipyllmapps.magics.classify, ipyllmapps.widgets.classify, "
        "ipyllmapps.models.classify; print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


# -- %finetune classify ------------------------------------------------------------


def write_reviews(path, rows=200):
    positive = ["good", "great", "wonderful", "love", "happy"]
    negative = ["bad", "terrible", "awful", "hate", "sad"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "mood"])
        for i in range(rows):
            words = positive if i % 2 == 0 else negative
            text = f"the {words[i % 5]} movie was {words[(i // 2) % 5]}"
            writer.writerow([text, "pos" if i % 2 == 0 else "neg"])
    return path


def test_finetune_trains_registers_saves_and_loads_back(shell, tiny, tmp_path):
    data = write_reviews(tmp_path / "reviews.csv")
    saved = tmp_path / "saved"
    shown = outputs(
        shell,
        f"%finetune classify --data {data} --text-col review "
        f"--label-col mood --base {tiny} --epochs 3 --lr 5e-3 "
        f"--name mine --save {saved} -o history",
    )
    assert "application/vnd.jupyter.widget-view+json" in shown[0]  # progress bar
    summary = shown[-1]["text/plain"]  # the final fallback
    assert "held-out accuracy" in summary and "on 40 rows" in summary
    assert "`%%classify -m mine`" in summary and str(saved) in summary
    assert shown[-1]["image/png"]  # the loss / accuracy plot
    history = shell.user_ns["history"]
    assert list(history["epoch"]) == [1, 2, 3]
    assert history["accuracy"].iloc[-1] >= 0.9
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]

    texts = ["the great movie was wonderful", "the awful movie was terrible"]
    run(shell, cell("%%classify -m mine -o by_name", texts))
    assert list(shell.user_ns["by_name"]["label"]) == ["pos", "neg"]
    run(shell, cell(f"%%classify -m {saved} -o by_folder", texts))
    by_folder = shell.user_ns["by_folder"]
    assert list(by_folder["label"]) == ["pos", "neg"]
    assert list(by_folder["score"]) == pytest.approx(
        list(shell.user_ns["by_name"]["score"]), abs=1e-5
    )


def test_finetune_ctrl_c_keeps_the_last_finished_epoch(
    shell, tiny, tmp_path, monkeypatch
):
    from ipyllmapps.widgets.training import TrainingView

    original = TrainingView.epoch

    def interrupt_second(self, number, **metrics):
        if number == 2:
            raise KeyboardInterrupt
        original(self, number, **metrics)

    monkeypatch.setattr(TrainingView, "epoch", interrupt_second)
    data = write_reviews(tmp_path / "reviews.csv", rows=40)
    shown = outputs(
        shell,
        f"%finetune classify --data {data} --text-col review "
        f"--label-col mood --base {tiny} --epochs 3 --name cut -o history",
    )
    assert (
        "1 epoch(s) (stopped: kept the last finished epoch)" in shown[-1]["text/plain"]
    )
    assert list(shell.user_ns["history"]["epoch"]) == [1]
    run(shell, "%classify -m cut -o res good")
    assert shell.user_ns["res"].iloc[0]["label"] in {"pos", "neg"}


@pytest.mark.parametrize(
    "args, expected",
    [
        ("--data missing.csv", "No file `missing.csv`"),
        ("--data {data} --text-col body", "has no column `body`"),
        (
            "--data {data} --text-col review --label-col mood --eval-split 1.5",
            "`--eval-split 1.5` must be in [0, 1)",
        ),
        ("--data {data} --epochs 0", "`--epochs 0` must be at least 1"),
        ("--data {data} --lr inf", "`--lr inf` must be above 0 and at most 1"),
        ("--data {data} --lr nan", "`--lr nan` must be above 0 and at most 1"),
        ("", "the following arguments are required: --data"),
    ],
)
def test_finetune_mistakes_are_one_line(shell, capsys, tmp_path, args, expected):
    data = write_reviews(tmp_path / "reviews.csv", rows=10)
    line = usage_error(shell, "%finetune classify " + args.format(data=data), capsys)
    assert expected in line


@pytest.mark.parametrize(
    "flags, expected",
    [
        ("-o 1bad", "`-o 1bad` is not a variable name you can use: try `-o results`."),
        (
            "--save {tmp}/afile/model",
            "`--save {tmp}/afile/model` cannot be created or written (Not a "
            "directory): give a folder you can write, like `--save ./my-model`.",
        ),
        (
            "--save /proc/nope",
            "`--save /proc/nope` cannot be created or written (No such file or "
            "directory): give a folder you can write, like `--save ./my-model`.",
        ),
        (
            "--save {tmp}/afile",
            "`--save {tmp}/afile` is a file, not a folder: give a folder, like "
            "`--save ./my-model`.",
        ),
    ],
)
def test_finetune_checks_out_and_save_before_training(
    shell, capsys, tmp_path, monkeypatch, flags, expected
):
    import ipyllmapps
    from ipyllmapps.models import classify

    def no_training(*args, **kwargs):
        raise AssertionError("training started before the flags were checked")

    monkeypatch.setattr(classify, "prepare_finetune", no_training)
    (tmp_path / "afile").write_text("not a folder")
    data = write_reviews(tmp_path / "rev.csv", rows=10)
    line = usage_error(
        shell,
        f"%finetune classify --data {data} --text-col review --label-col mood "
        f"--name ft1 {flags.format(tmp=tmp_path)}",
        capsys,
    )
    assert line == "UsageError: " + expected.format(tmp=tmp_path)
    assert "ft1" not in ipyllmapps.manager()
    assert "1bad" not in shell.user_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "rev.csv"]


def test_finetune_save_folder_is_created_only_by_saving(tmp_path):
    from ipyllmapps.models.training import check_folder

    check_folder(tmp_path / "new" / "model")
    assert not (tmp_path / "new").exists()  # checked, then removed again


def test_finetune_header_only_file_says_it_has_no_rows(shell, capsys, tmp_path):
    (tmp_path / "rev.csv").write_text("text,label\n")
    cell = f"%finetune classify --data {tmp_path / 'rev.csv'}"
    line = usage_error(shell, cell, capsys)
    assert line == (
        "UsageError: `rev.csv` has no rows: add one text and its label per row "
        "under the header."
    )


@pytest.mark.parametrize(
    "alias, expected",
    [
        (
            "imagenet",
            "`imagenet` is the bundled image model: use `%classify_image IMAGE -m "
            "imagenet`, or for text `-m sentiment`.",
        ),
        (
            "whisper-tiny.en",
            "`whisper-tiny.en` is the bundled speech model: use `%transcribe AUDIO "
            "-m whisper-tiny.en`, or for text `-m sentiment`.",
        ),
        (
            "smollm2",
            "`smollm2` is the bundled chat model: use `%%chat -m smollm2`, or for "
            "text `-m sentiment`.",
        ),
    ],
)
def test_another_applications_bundled_model_is_named(shell, capsys, alias, expected):
    line = usage_error(shell, f"%%classify -m {alias}\nWhat a lovely day\n", capsys)
    assert line == "UsageError: " + expected
    import ipyllmapps

    assert len(ipyllmapps.manager()) == 0  # nothing was loaded

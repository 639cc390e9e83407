"""``%transcribe``: audio handling (cases A1-A2), both engines, the view, WER."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ipyllmapps.models import speech
from tests.conftest import run, usage_error

DATA = Path(__file__).parent / "data" / "speech"
TRANSCRIPTS = json.loads((DATA / "transcripts.json").read_text())


def fixture(name):
    """A committed clip as float32 samples and its rate."""
    samples, rate = sf.read(DATA / name, dtype="float32")
    return samples, rate


def published(shell, monkeypatch):
    """Collect the mime bundles the magics display."""
    bundles = []
    monkeypatch.setattr(
        shell.display_pub,
        "publish",
        lambda data, metadata=None, **kw: bundles.append(data),
    )
    return bundles


def sine(freq, rate, seconds=1.0):
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(audio, rate):
    spectrum = np.abs(np.fft.rfft(audio))
    return np.fft.rfftfreq(len(audio), 1 / rate)[spectrum.argmax()]


# -- audio handling, no model ------------------------------------------------------


def test_fixtures_are_small_mono_16bit_with_transcripts():
    wavs = sorted(DATA.glob("*.wav"))
    assert len(wavs) == len(TRANSCRIPTS) >= 10
    assert sum(p.stat().st_size for p in DATA.iterdir()) < 1.5e6
    for path in wavs:
        info = sf.info(path)
        assert (info.channels, info.subtype) == (1, "PCM_16"), path.name
        assert path.name in TRANSCRIPTS


@pytest.mark.parametrize("layout", ["samples-first", "channels-first"])
def test_stereo_is_averaged_over_the_channel_axis(layout):
    left, right = sine(440, 16000), sine(440, 16000) * 0.5
    stereo = np.stack([left, right], axis=1)  # (samples, 2)
    if layout == "channels-first":
        stereo = stereo.T  # (2, samples), as torchaudio gives it
    mono = speech.to_mono(stereo)
    assert mono.shape == (16000,)
    np.testing.assert_allclose(mono, (left + right) / 2, atol=1e-6)


def test_array_with_too_many_channels_is_refused():
    with pytest.raises(speech.UserError, match="is not audio with channels"):
        speech.to_mono(np.zeros((100, 200), dtype=np.float32))


@pytest.mark.parametrize("rate", [44100, 8000, 22050])
def test_prepare_resamples_to_16k_and_keeps_the_pitch(rate):
    audio = speech.prepare(sine(440, rate, seconds=2.0), rate)
    assert audio.dtype == np.float32
    assert abs(len(audio) - 32000) <= 2
    assert abs(peak_hz(audio, 16000) - 440) < 2


def test_pairs_in_either_order_dicts_and_integer_pcm():
    samples = (sine(300, 8000) * 32767).astype(np.int16)
    for value in [
        (samples, 8000),
        (8000, samples),
        {"array": samples, "sampling_rate": 8000},
    ]:
        audio, rate = speech.read_audio(value)
        assert rate == 8000 and audio.dtype == np.float32
        assert np.abs(audio).max() == pytest.approx(0.5, abs=1e-3)
    audio, rate = speech.read_audio(samples, rate=8000)
    assert (rate, audio.shape) == (8000, (8000,))


def test_files_decode_wav_flac_and_stereo(tmp_path):
    samples, rate = fixture("lights.wav")
    sf.write(tmp_path / "clip.flac", samples, rate)
    sf.write(tmp_path / "stereo.wav", np.stack([samples, samples], axis=1), rate)
    flac, flac_rate = speech.read_file(tmp_path / "clip.flac")
    stereo, _ = speech.read_file(tmp_path / "stereo.wav")
    assert flac_rate == 16000
    np.testing.assert_allclose(flac, samples, atol=1e-4)
    assert stereo.shape == (len(samples), 2)


def test_word_error_rate_and_grouping():
    assert (
        speech.word_error_rate(["turn on the lights"], ["Turn on the light."]) == 0.25
    )
    assert speech.word_error_rate(["a b c", "d e"], ["a x c", "d e f"]) == 2 / 5
    words = [
        {"start": 0.0, "end": 0.3, "word": "open"},
        {"start": 0.35, "end": 0.6, "word": "it"},
        {"start": 2.0, "end": 2.4, "word": "now"},
    ]
    segments = speech.group_words(words)
    assert [(s["start"], s["end"], s["text"]) for s in segments] == [
        (0.0, 0.6, "open it"),
        (2.0, 2.4, "now"),
    ]


# -- user errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "line", "expected"),
    [
        ("", "%transcribe", "Name what to transcribe: `%transcribe speech.wav`"),
        ("", "%transcribe nowhere", "`nowhere` is neither a variable nor a file"),
        ("", "%transcribe missing.wav", "No audio file `missing.wav`: check the path"),
        ("", "%transcribe 'clips/*.flac'", "No file matches `clips/*.flac`"),
        (
            "import numpy as np; clip = np.zeros(16000)",
            "%transcribe clip",
            "`clip` is an array without a sampling rate: add it with `--rate 16000` or "
            "store `(clip, rate)` in the variable.",
        ),
        (
            "import numpy as np; clip = np.zeros(16000)",
            "%transcribe clip --rate 5",
            "`5` is not a sampling rate: give it in Hz, like `--rate 16000`.",
        ),
        (
            "clip = 'not audio'.split()",
            "%transcribe clip --rate 16000",
            "`clip` is not audio: pass a 1-D array of samples",
        ),
        (
            "import numpy as np; clip = np.zeros((2, 3, 4))",
            "%transcribe clip --rate 8000",
            "`clip` is not audio",
        ),
        (
            "",
            "%transcribe x.wav --timestamps char",
            "`--timestamps char` is not a choice: use `segment` or `word`.",
        ),
        ("", "%transcribe x.wav --bogus", "unrecognized arguments: --bogus"),
    ],
)
def test_user_errors_are_one_line(shell, capsys, setup, line, expected):
    run(shell, setup)
    assert expected in usage_error(shell, line, capsys)


@pytest.mark.parametrize(
    ("setup", "line", "expected"),
    [
        (
            "nanclip = np.full(16000, np.nan, dtype=np.float32)",
            "%transcribe nanclip --rate 16000",
            "`nanclip` holds NaN or infinite samples: replace them first, e.g. with "
            "`np.nan_to_num(samples)`, or give real audio.",
        ),
        (
            "pair = (np.zeros(16000, dtype=np.float32), '16000')",
            "%transcribe pair",
            "The sampling rate in `pair` is '16000', a str: the rate must be a "
            "number, like `(samples, 16000)`.",
        ),
        (
            "pair = ('16000', np.zeros(16000, dtype=np.float32))",
            "%transcribe pair",
            "The sampling rate in `pair` is '16000', a str: the rate must be a "
            "number, like `(samples, 16000)`.",
        ),
        (
            "clip = np.zeros(16000, dtype=np.float32)",
            "%transcribe clip --rate 16000 -m smollm2",
            "`smollm2` is the bundled chat model: use `%%chat -m smollm2`, or for "
            "speech `-m whisper-tiny.en`.",
        ),
        (
            "clip = np.zeros(16000, dtype=np.float32)",
            "%transcribe clip --rate 16000 -m imagenet",
            "`imagenet` is the bundled image model: use `%classify_image IMAGE -m "
            "imagenet`, or for speech `-m whisper-tiny.en`.",
        ),
    ],
)
def test_bad_audio_values_and_models_are_one_line(
    shell, capsys, recwarn, setup, line, expected
):
    import ipyllmapps

    run(shell, "import numpy as np; " + setup)
    assert usage_error(shell, line, capsys) == "UsageError: " + expected
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert len(ipyllmapps.manager()) == 0


def test_nan_in_a_float_file_is_one_line(shell, capsys, tmp_path):
    samples = sine(440, 16000)
    samples[100] = np.nan
    sf.write(tmp_path / "broken.wav", samples, 16000, subtype="FLOAT")
    line = usage_error(shell, f"%transcribe {tmp_path / 'broken.wav'}", capsys)
    assert line == (
        "UsageError: `broken.wav` holds NaN or infinite samples: replace them "
        "first, e.g. with `np.nan_to_num(samples)`, or give real audio."
    )


def test_a_folder_without_audio_is_one_line(shell, capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("no audio here")
    line = usage_error(shell, f"%transcribe {tmp_path}", capsys)
    assert line == (
        f"UsageError: The folder `{tmp_path}` holds no audio files (.wav, .flac, "
        f".ogg, .mp3, ...): give the files, or a pattern like `{tmp_path}/*.wav`."
    )
    shell.user_ns["where"] = str(tmp_path)
    line = usage_error(shell, "%transcribe where", capsys)
    assert line == (
        f"UsageError: `{tmp_path}` is a folder: give it on the line (`%transcribe "
        f"{tmp_path}`) to transcribe its audio files, or give one file."
    )


def test_urls_offline_and_unreachable(shell, capsys):
    run(shell, "%config LLMApps.offline = True")
    line = usage_error(shell, "%transcribe https://example.invalid/a.wav", capsys)
    assert "needs the internet but `LLMApps.offline` is on" in line
    run(shell, "%config LLMApps.offline = False")
    line = usage_error(shell, "%transcribe http://127.0.0.1:9/a.wav", capsys)
    assert line.startswith("UsageError: Could not download `http://127.0.0.1:9/a.wav`")


def test_undecodable_files(shell, capsys, tmp_path, monkeypatch):
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really a wave file")
    (tmp_path / "voice.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A ")
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg on PATH
    line = usage_error(shell, f"%transcribe {tmp_path / 'broken.wav'}", capsys)
    assert "`broken.wav` is not audio soundfile can read" in line
    line = usage_error(shell, f"%transcribe {tmp_path / 'voice.m4a'}", capsys)
    assert (
        "`voice.m4a` needs ffmpeg to decode: install it (`apt-get install ffmpeg`"
        in line
    )


@pytest.mark.real
def test_m4a_is_decoded_through_ffmpeg(shell, tmp_path):
    """A format soundfile cannot read goes through ffmpeg (installed by .ci/run)."""
    import shutil
    import subprocess

    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg is needed: `apt-get install ffmpeg` (.ci/run does it)"
    m4a = tmp_path / "lights.m4a"
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-i", str(DATA / "lights.wav"), str(m4a)],
        check=True,
    )
    run(shell, f"%transcribe {m4a} -o heard")
    text = " ".join(shell.user_ns["heard"]["text"]).lower()
    assert "kitchen lights" in text


# -- the view ----------------------------------------------------------------------


def test_view_has_player_seekable_segments_and_text_fallback():
    from ipyllmapps.widgets.speech import TranscriptView, clock, text_view

    audio = sine(440, 16000, seconds=2.0)
    result = {
        "text": "open the door. now.",
        "duration": 2.0,
        "words": [],
        "segments": [
            {"start": 0.0, "end": 1.2, "text": "open the door."},
            {"start": 75.5, "end": 76.0, "text": "now."},
        ],
    }
    clip = {"source": "door.wav", "audio": audio, "rate": 16000, "result": result}
    view = TranscriptView([clip], title="whisper-tiny.en")
    block = view.widget.children[1].value
    assert "<audio controls" in block and "data:audio/wav;base64," in block
    assert "p.currentTime=75.5;p.play()" in block
    assert clock(75.5) == "1:15.5" and clock(3725) == "1:02:05.0"
    text = text_view([clip], "whisper-tiny.en")
    assert "door.wav (2.0 s): open the door. now." in text
    assert "[0:00.0 - 0:01.2] open the door." in text


@pytest.mark.browser
def test_clicking_a_segment_seeks_the_player():
    """A row's click handler works when set as innerHTML, as the HTML widget does."""
    import shutil

    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on PATH (`apt-get install -y chromium`)")
    from ipyllmapps.widgets.speech import clip_html

    result = {
        "text": "a b",
        "duration": 4.0,
        "words": [],
        "segments": [
            {"start": 0.0, "end": 1.0, "text": "a"},
            {"start": 2.5, "end": 4.0, "text": "b"},
        ],
    }
    html = clip_html(
        {
            "source": "x",
            "audio": sine(440, 16000, 4.0),
            "rate": 16000,
            "result": result,
        },
        600,
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        page = browser.new_page()
        page.set_content("<div id='view'></div>")
        page.evaluate(
            "html => { document.getElementById('view').innerHTML = html; }", html
        )
        page.wait_for_function("document.querySelector('audio').readyState >= 1")
        page.locator("div[title='play from here']").nth(1).click()
        position = page.evaluate("document.querySelector('audio').currentTime")
        browser.close()
    assert position >= 2.5


# -- the transformers engine, with a tiny wav2vec2 built from a config ---------------


def test_transformers_ctc_model_output_and_chunking(factory):
    folder = factory.wav2vec2_ctc()
    bundle = speech.load(str(folder), device="cpu", dtype="float32", offline=True)
    assert (bundle.engine, bundle.model_type, bundle.framework) == (
        "transformers",
        "wav2vec2",
        "torch",
    )
    calls = []
    bundle.model.register_forward_hook(
        lambda module, args, kwargs, out: calls.append(
            kwargs["input_values"].shape[-1]
        ),
        with_kwargs=True,
    )
    rng = np.random.default_rng(0)
    long_audio = (rng.standard_normal(16000 * 24) * 0.1).astype(np.float32)

    result = speech.transcribe(bundle, long_audio, chunk_length_s=6, timestamps="word")
    assert len(calls) >= 4  # 24 s cut into overlapping 6 s chunks
    assert max(calls) == 6 * 16000
    assert isinstance(result["text"], str) and result["text"]
    assert result["duration"] == 24.0
    ends = [w["end"] for w in result["words"]]
    assert ends == sorted(ends) and ends[-1] > 18  # words from the last chunks too
    assert sum(len(s["words"]) for s in result["segments"]) == len(result["words"])

    calls.clear()
    short = speech.transcribe(bundle, long_audio[: 16000 * 3])
    assert calls == [3 * 16000] and short["words"] == []
    with pytest.raises(speech.UserError, match="`--language` applies to Whisper"):
        speech.transcribe(bundle, long_audio[:1600], language="fr")


def test_transcribe_magic_takes_a_transformers_folder(shell, factory, monkeypatch):
    folder = factory.wav2vec2_ctc()
    shell.user_ns["pair"] = (sine(300, 8000), 8000)
    bundles = published(shell, monkeypatch)
    assert run(shell, f"%transcribe pair -m {folder} -o out") is None  # no model back
    table = shell.user_ns["out"]
    assert list(table.columns) == ["source", "start", "end", "text"]
    assert set(table["source"]) == {"pair"}
    assert "<audio controls" in bundles[-1]["text/html"]
    assert "application/vnd.jupyter.widget-view+json" in bundles[-1]


def test_transcribe_reads_the_audio_files_of_a_folder(shell, factory, tmp_path):
    model = factory.wav2vec2_ctc()
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("b.flac", "a.wav"):
        sf.write(clips / name, sine(300, 8000), 8000)
    (clips / "notes.txt").write_text("not audio")
    (clips / "sub").mkdir()
    run(shell, f"%transcribe {clips} -m {model} -o out")
    assert list(dict.fromkeys(shell.user_ns["out"]["source"])) == ["a.wav", "b.flac"]


# -- the bundled whisper-tiny.en ---------------------------------------------------


@pytest.fixture(scope="module")
def whisper():
    return speech.load("whisper-tiny.en", device="cpu", dtype="float32", offline=True)


def _text(bundle, samples, rate, **kwargs):
    return speech.transcribe(bundle, speech.prepare(samples, rate), **kwargs)["text"]


@pytest.mark.real
def test_word_error_rate_on_the_fixtures_is_at_most_ten_percent(whisper):
    names = sorted(TRANSCRIPTS)
    hypotheses = [_text(whisper, *fixture(name)) for name in names]
    wer = speech.word_error_rate([TRANSCRIPTS[n] for n in names], hypotheses)
    print(f"WER on {len(names)} fixtures: {wer:.1%}")
    assert wer <= 0.10


@pytest.mark.real
def test_a1_stereo_in_both_layouts_and_as_a_file(shell, tmp_path, monkeypatch):
    mono, rate = fixture("fox.wav")
    stereo = np.stack([mono, mono * 0.8], axis=1)  # (samples, 2)
    sf.write(tmp_path / "stereo.wav", stereo, rate)
    shell.user_ns.update(mono=mono, wide=stereo, tall=stereo.T.copy())
    published(shell, monkeypatch)
    run(
        shell,
        f"%transcribe mono wide tall {tmp_path / 'stereo.wav'} --rate {rate} -o out",
    )
    texts = shell.user_ns["out"].groupby("source", sort=False)["text"].apply(" ".join)
    assert list(texts.index) == ["mono", "wide", "tall", "stereo.wav"]
    assert shell.user_ns["out"]["end"].max() <= len(mono) / rate  # clamped to the clip
    assert len(set(texts)) == 1
    assert speech.word_error_rate([TRANSCRIPTS["fox.wav"]], [texts["mono"]]) <= 0.1


@pytest.mark.real
def test_a2_44k_and_8k_as_files_and_arrays(shell, tmp_path, monkeypatch):
    import soxr

    samples, rate = fixture("music.wav")
    high = soxr.resample(samples, rate, 44100).astype(np.float32)
    sf.write(tmp_path / "high.wav", high, 44100, subtype="PCM_16")
    low, low_rate = fixture("heater.wav")
    assert low_rate == 8000  # flite's 8 kHz voice
    shell.user_ns.update(high=high, low=low)
    published(shell, monkeypatch)
    run(shell, f"%transcribe {tmp_path / 'high.wav'} {DATA / 'heater.wav'} -o files")
    run(shell, "%transcribe high --rate 44100 -o a\n%transcribe low --rate 8000 -o b")
    files = shell.user_ns["files"].groupby("source", sort=False)["text"].apply(" ".join)
    arrays = [" ".join(shell.user_ns[n]["text"]) for n in ("a", "b")]
    assert list(files) == arrays
    assert (
        speech.word_error_rate(
            [TRANSCRIPTS["music.wav"], TRANSCRIPTS["heater.wav"]], arrays
        )
        <= 0.1
    )


@pytest.mark.real
def test_a_minute_of_joined_fixtures_is_transcribed_whole(shell, monkeypatch, capsys):
    names = sorted(TRANSCRIPTS)
    pieces, used, gap = [], [], np.zeros(8000, dtype=np.float32)
    while sum(len(p) for p in pieces) < 60 * 16000:
        name = names[len(used) % len(names)]
        pieces += [speech.prepare(*fixture(name)), gap]
        used.append(name)
    shell.user_ns["minute"] = (np.concatenate(pieces), 16000)
    published(shell, monkeypatch)
    run(shell, "%transcribe minute -o out")
    out = shell.user_ns["out"]
    first, last = out["text"].iloc[0].lower(), " ".join(out["text"].iloc[-2:]).lower()
    assert out["end"].iloc[-1] > 55
    assert "quick brown fox" in first  # names[0] is fox.wav
    assert speech.normalize(TRANSCRIPTS[used[-1]]).split()[-2] in speech.normalize(last)
    assert "minute" in capsys.readouterr().err  # the progress bar ran


@pytest.mark.real
def test_word_timestamps_reuse_and_english_only(shell, capsys, monkeypatch):
    published(shell, monkeypatch)
    run(shell, f"%transcribe {DATA / 'window.wav'} --timestamps word -o out")
    words = [w for ws in shell.user_ns["out"]["words"] for w in ws]
    assert [w["word"].strip(".").lower() for w in words] == (
        TRANSCRIPTS["window.wav"].split()
    )
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and words[-1]["end"] <= 2.1

    import ipyllmapps

    manager = ipyllmapps.manager()
    run(shell, f"%transcribe {DATA / 'lights.wav'}")
    assert manager.load_count == 1
    (record,) = manager.list()
    assert (record["framework"], record["name"]) == ("ctranslate2", "whisper-tiny.en")
    assert 30e6 < record["parameters"] < 45e6  # Whisper tiny: 39M with its embeddings
    assert record["bytes"] == (speech.bundled_path() / "model.bin").stat().st_size
    line = usage_error(
        shell, f"%transcribe {DATA / 'lights.wav'} --language fr", capsys
    )
    assert "This model understands English only: drop `--language fr`" in line

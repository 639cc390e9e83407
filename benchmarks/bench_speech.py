"""Measure the real-time factor of ``%transcribe``'s default engine.

The real-time factor (RTF) is seconds of computing per second of audio: below
1 is faster than real time. Wall-clock RTF is what a user waits; the CPU-time
RTF (all threads together) is printed too because it varies less on a shared
machine. It is measured on the committed fixtures
(``tests/data/speech``), one clip at a time as ``%transcribe`` runs them, and on
a minute of audio made by joining them. The word error rate on the fixtures is
printed alongside, so a faster setting that hurts accuracy shows up.

Baselines, measured in the same run:

- real time itself (``ratio`` = RTF);
- the same model with float32 weights instead of the int8 weights ipyllmapps
  uses on CPU (``ratio`` = int8 time / float32 time).

The transformers pipeline is not compared: no transformers Whisper tiny.en (or
another model of that size) is available offline on the machines this project
runs on. With one in the hub cache, ``%transcribe -m openai/whisper-tiny.en``
runs it.

Run ``python benchmarks/bench_speech.py`` (``--quick`` for a shorter run).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from ipyllmapps.models import speech

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="half the clips, no float32 comparison"
    )
    args = parser.parse_args()

    transcripts = json.loads((DATA / "transcripts.json").read_text())
    names = sorted(transcripts)[: 5 if args.quick else None]
    clips = [speech.prepare(*sf.read(DATA / name, dtype="float32")) for name in names]
    seconds = sum(len(c) for c in clips) / speech.RATE

    start = time.perf_counter()
    bundle = speech.load("whisper-tiny.en", device="cpu", dtype="float32", offline=True)
    print(f"load whisper-tiny.en: {time.perf_counter() - start:.1f} s")
    speech.transcribe(bundle, clips[0])  # warm-up

    elapsed, cpu, texts = _run(bundle, clips)
    wer = speech.word_error_rate([transcripts[n] for n in names], texts)
    rtf = elapsed / seconds
    print(f"clips: {len(clips)} ({seconds:.1f} s of audio), WER {wer:.1%}")
    print(
        f"int8 on CPU, one clip at a time: {elapsed:.2f} s, RTF {rtf:.3f} "
        f"(CPU time {cpu:.2f} s, RTF {cpu / seconds:.3f})"
    )
    print(f"ratio: {rtf:.3f}  (RTF against real time)")

    minute = np.concatenate(
        [np.concatenate([c, np.zeros(8000, np.float32)]) for c in clips] * 3
    )[: 60 * speech.RATE]
    long_elapsed, long_cpu, _ = _run(bundle, [minute])
    long_rtf = long_elapsed / (len(minute) / speech.RATE)
    print(
        f"joined clip of {len(minute) / speech.RATE:.0f} s: {long_elapsed:.2f} s, "
        f"RTF {long_rtf:.3f} (CPU time {long_cpu:.2f} s)"
    )
    print(f"ratio: {long_rtf:.3f}  (RTF of long audio against real time)")

    if args.quick:
        return
    from faster_whisper import WhisperModel

    full = WhisperModel(
        str(speech.bundled_path()), device="cpu", compute_type="float32"
    )
    baseline = speech.SpeechBundle(
        model=full, framework="ctranslate2", multilingual=False
    )
    speech.transcribe(baseline, clips[0])
    full_elapsed, full_cpu, full_texts = _run(baseline, clips)
    full_wer = speech.word_error_rate([transcripts[n] for n in names], full_texts)
    print(
        f"float32 weights: {full_elapsed:.2f} s, RTF {full_elapsed / seconds:.3f} "
        f"(CPU time {full_cpu:.2f} s), WER {full_wer:.1%}"
    )
    print(
        f"ratio: {elapsed / full_elapsed:.2f}  (int8 time / float32 time; CPU time "
        f"{cpu / full_cpu:.2f})"
    )


def _run(bundle, clips):
    """Transcribe ``clips``; return wall seconds, CPU seconds and the texts."""
    start, start_cpu = time.perf_counter(), time.process_time()
    texts = [speech.transcribe(bundle, clip)["text"] for clip in clips]
    return time.perf_counter() - start, time.process_time() - start_cpu, texts


if __name__ == "__main__":
    main()

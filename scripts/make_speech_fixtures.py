"""Regenerate the speech fixtures in ``tests/data/speech/`` with Debian's flite.

The sentences below are spoken by flite's built-in voices and written as
16-bit mono WAV files, with the sentences themselves as the transcripts in
``transcripts.json``. The clips are small on purpose (the folder stays well
under 1.5 MB) and are committed, so the tests and the example notebook never
need flite. One clip uses flite's 8 kHz voice, so a file at another rate than
Whisper's 16 kHz is part of the set.

Run it from the repository root after ``apt-get install -y flite``::

    python scripts/make_speech_fixtures.py
"""

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

# (file name, flite voice, sentence). The voices slt, rms, awb and kal16 speak
# at 16 kHz; kal speaks at 8 kHz.
CLIPS = [
    ("lights", "slt", "turn on the kitchen lights"),
    ("music", "rms", "play some music in the living room"),
    ("weather", "slt", "what is the weather like tomorrow morning"),
    ("window", "awb", "open the window and close the door"),
    ("phone", "rms", "call my brother on his mobile phone"),
    ("milk", "slt", "remind me to buy milk and bread"),
    ("report", "rms", "please send the report to the team before lunch"),
    ("fox", "slt", "the quick brown fox jumps over the lazy dog"),
    ("garden", "awb", "water the plants in the garden this evening"),
    ("heater", "kal", "switch off the heater in the bedroom"),
]

TARGET = Path(__file__).resolve().parent.parent / "tests" / "data" / "speech"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TARGET, help="output folder")
    args = parser.parse_args()
    flite = shutil.which("flite")
    if flite is None:
        raise SystemExit("flite is not installed: `apt-get install -y flite`.")

    args.out.mkdir(parents=True, exist_ok=True)
    transcripts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, voice, sentence in CLIPS:
            raw = Path(tmp) / f"{name}.wav"
            subprocess.run(
                [flite, "-voice", voice, "-t", sentence, "-o", str(raw)], check=True
            )
            audio, rate = sf.read(raw, dtype="int16")
            audio = _trim(audio, rate)
            sf.write(args.out / f"{name}.wav", audio, rate, subtype="PCM_16")
            transcripts[f"{name}.wav"] = sentence
    text = json.dumps(transcripts, indent=2) + "\n"
    (args.out / "transcripts.json").write_text(text)
    total = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {len(CLIPS)} clips to {args.out} ({total / 1e6:.2f} MB)")


def _trim(audio, rate, pad=0.15):
    """Cut leading and trailing silence, keeping ``pad`` seconds on each side."""
    loud = np.flatnonzero(np.abs(audio.astype(np.int32)) > 300)
    if loud.size == 0:
        return audio
    margin = int(pad * rate)
    return audio[max(0, loud[0] - margin) : loud[-1] + margin]


if __name__ == "__main__":
    main()

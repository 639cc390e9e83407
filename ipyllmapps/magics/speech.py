"""``%transcribe``: turn recorded speech into text, offline by default."""

from pathlib import Path

from IPython.core.magic import line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from ipyllmapps.errors import UserError, user_errors
from ipyllmapps.magics._base import AppMagics, parse
from ipyllmapps.models import speech as model

LONG_AUDIO = 30.0  # seconds; longer clips show a progress bar while decoding
_PATTERN = set("*?[")


@magics_class
class SpeechMagics(AppMagics):
    """The ``%transcribe`` line magic."""

    @magic_arguments()
    @argument(
        "sources",
        nargs="*",
        help="audio files (wav, flac, ogg, mp3; m4a and "
        "others with ffmpeg; wildcards like `clips/*.wav`), folders of them, "
        "http(s) URLs, or "
        "names of variables holding `(array, rate)` or an array",
    )
    @argument(
        "-m",
        "--model",
        help="`whisper-tiny.en` (default, offline), a "
        "CTranslate2 Whisper folder, or a transformers speech-recognition "
        "model by hub id or folder",
    )
    @argument(
        "--rate",
        type=int,
        help="sampling rate in Hz of a variable holding a "
        "bare array (files and pairs carry their own)",
    )
    @argument(
        "--timestamps",
        default="segment",
        help="`segment` (default) or `word`: what gets start and end times",
    )
    @argument(
        "--language",
        help="spoken language code like `fr` for multilingual "
        "Whisper models (detected when omitted)",
    )
    @argument(
        "-o",
        "--out",
        help="store one record per segment (source, start, end, "
        "text, and words with `--timestamps word`) in this variable",
    )
    @no_var_expand
    @line_magic
    @user_errors
    def transcribe(self, line):
        """Transcribe speech from files, URLs or arrays into timed text.

        The default model, ``whisper-tiny.en``, runs offline through
        faster-whisper. Audio is decoded here, its channels averaged and
        resampled to 16 kHz, so a stereo 44.1 kHz file and a mono 8 kHz one
        both work; audio of any length is transcribed whole, with a progress
        bar for long clips. ``-m`` takes any transformers speech-recognition
        model (Whisper, wav2vec2), which cuts long audio into overlapping
        chunks. The result shows a player, the transcript and its timed
        segments; click a segment to play from there.

        Examples
        --------
        ::

            %transcribe command.wav
            %transcribe clips/*.wav -o transcripts
            %transcribe clips/                      # its audio files, by name
            %transcribe lecture.flac --timestamps word
            %transcribe clip --rate 16000           # clip = a numpy array
            %transcribe pair                        # pair = (array, rate)
            %transcribe talk.wav -m ./wav2vec2-base-960h
            %transcribe interview.wav -m openai/whisper-small --language fr
        """
        args = parse(self.transcribe, line)
        if args is None:
            return
        if not args.sources:
            raise UserError(
                "Name what to transcribe: `%transcribe speech.wav`, or a variable "
                "like `%transcribe clip --rate 16000`."
            )
        model.check_timestamps(args.timestamps)

        clips = [
            (label, model.prepare(samples, rate))
            for label, samples, rate in self._read(args)
        ]
        loaded = self.manager.load(args.model or self.config_obj.asr_model, "asr")
        from ipyllmapps.widgets.speech import Progress, TranscriptView

        shown, records = [], []
        for label, audio in clips:
            progress = None
            if len(audio) / model.RATE > LONG_AUDIO:
                progress = Progress(len(audio) / model.RATE, label)
            try:
                result = model.transcribe(
                    loaded.bundle,
                    audio,
                    timestamps=args.timestamps,
                    language=args.language,
                    progress=progress,
                )
            finally:
                if progress is not None:
                    progress.close()
            shown.append(
                {"source": label, "audio": audio, "rate": model.RATE, "result": result}
            )
            records.extend(_records(label, result))

        self.store(args.out, records)
        TranscriptView(shown, title=loaded.name).show()

    def _read(self, args):
        """Yield ``(label, samples, rate)`` for every source on the line."""
        offline = self.config_obj.offline
        for token in args.sources:
            if token.isidentifier() and token in self.shell.user_ns:
                samples, rate = model.read_audio(
                    self.shell.user_ns[token], rate=args.rate, name=token
                )
                yield token, samples, rate
            elif token.startswith(("http://", "https://")):
                samples, rate = model.read_audio(token, offline=offline)
                yield token.rstrip("/").split("/")[-1] or token, samples, rate
            elif _PATTERN & set(token):
                for path in model.expand_paths(token):
                    yield Path(path).name, *model.read_file(path)
            elif Path(token).expanduser().is_dir():
                for path in model.folder_paths(token):
                    yield Path(path).name, *model.read_file(path)
            elif token.isidentifier() and not Path(token).exists():
                raise UserError(
                    f"`{token}` is neither a variable nor a file: define it first, "
                    "or give a path like `speech.wav`."
                )
            else:
                yield Path(token).name, *model.read_file(token)


def _records(label, result):
    """One record per segment: source, start, end, text (and its words)."""
    return [{"source": label, **segment} for segment in result["segments"]]

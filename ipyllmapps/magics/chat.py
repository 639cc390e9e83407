"""``%%chat``, ``%generate`` and ``%finetune lm``: dialogue and text generation."""

import math
import threading
from pathlib import Path

from IPython.core.magic import line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from ipyllmapps.errors import UserError, user_errors
from ipyllmapps.magics._base import AppMagics, check_rate, check_variable_name, parse

CHAT_MAX_NEW_TOKENS = 256
CHAT_TEMPERATURE = 0.3
CHAT_TOP_P = 0.9
CHAT_REPETITION_PENALTY = 1.1  # small models otherwise repeat their last sentence


@magics_class
class ChatMagics(AppMagics):
    """The ``%%chat`` and ``%generate`` magics.

    One conversation is kept per model, across cells, until ``%chat --reset``.
    """

    def __init__(self, shell, extension):
        super().__init__(shell, extension)
        self.conversations = {}  # model name -> models.lm.Conversation
        self.views = {}  # model name -> the ChatView of its latest reply
        self.names = {}  # source as typed after -m -> the model's name
        shell.events.register("pre_run_cell", self._finish_replies)

    def close(self):
        """Stop waiting on cells (called when the extension is unloaded)."""
        self.shell.events.unregister("pre_run_cell", self._finish_replies)

    def _finish_replies(self, info=None):
        """Let a streaming reply end before the next cell runs.

        ``%%chat`` returns at once so that its Stop button can be clicked while
        the reply streams; the next cell then waits for the reply (Interrupt
        stops it), so cells still run in order and a notebook run from start
        to end, headless too, saves every reply whole.
        """
        for view in list(self.views.values()):
            view.wait()

    @magic_arguments()
    @argument(
        "-m",
        "--model",
        help="model name, hub id, folder or .gguf file "
        "(default: `%%config LLMApps.chat_model`, `smollm2`)",
    )
    @argument("--system", help="system prompt for this conversation, in quotes")
    @argument("--reset", action="store_true", help="forget the conversation first")
    @argument("--history", action="store_true", help="show the conversation so far")
    @argument(
        "--max-new-tokens",
        type=int,
        help=f"longest reply in tokens (default {CHAT_MAX_NEW_TOKENS}, or half "
        "the context of a model that reads fewer tokens)",
    )
    @argument(
        "--temperature",
        type=float,
        default=CHAT_TEMPERATURE,
        help=f"randomness, 0 for greedy (default {CHAT_TEMPERATURE})",
    )
    @argument(
        "--top-p",
        type=float,
        default=CHAT_TOP_P,
        help=f"nucleus sampling mass (default {CHAT_TOP_P})",
    )
    @argument("--seed", type=int, help="random seed, for a reply you can reproduce")
    @no_var_expand
    @line_cell_magic
    @user_errors
    def chat(self, line, cell=None):
        """Chat with a language model; the reply streams in as it is written.

        The cell is your message. The conversation is kept per model across
        cells; when it grows past what the model reads, the oldest turns are
        dropped and a notice says so. The Stop button ends a reply early.
        ``{var}`` and ``$var`` are not expanded: the message is sent as typed.

        Examples
        --------
        ::

            %%chat
            What is overfitting?

            %%chat --system "You are a patient tutor" --reset
            Explain dropout in two sentences.

            %%chat -m ./my-gpt2 --temperature 0 --max-new-tokens 60
            Hello!

            %chat --history          # the conversation so far
            %chat --reset            # forget it
        """
        from ipyllmapps.models import lm

        args = parse(self.chat, line)
        if args is None:
            return
        message = (cell or "").strip()
        if cell is not None and not message and not args.history:
            raise UserError(
                "The `%%chat` cell is empty: write your message below "
                "`%%chat`, like `What is overfitting?`."
            )
        if cell is None and not (args.history or args.reset or args.system is not None):
            raise UserError(
                "`%chat` needs a message: write it in a cell under `%%chat`, "
                "or use `%chat --history` or `%chat --reset`."
            )
        sampling = lm.Sampling(
            max_new_tokens=(
                CHAT_MAX_NEW_TOKENS
                if args.max_new_tokens is None
                else args.max_new_tokens
            ),
            temperature=args.temperature,
            top_p=args.top_p,
            repetition_penalty=CHAT_REPETITION_PENALTY,
            seed=args.seed,
        ).check()

        source = args.model or self.config_obj.chat_model
        if message or args.system is not None:
            entry = self.manager.load(source, "lm")
            name = self.names[source] = entry.name
        else:  # showing or clearing the history needs no model in memory
            name = self._loaded_name(source) or self.names.get(source, source)
        self.wait(name)
        if message or args.system is not None:
            conversation = self.conversations.setdefault(name, lm.Conversation())
        elif name in self.conversations:
            conversation = self.conversations[name]
        else:  # nothing to show or clear: keep it so, without a new entry
            conversation = lm.Conversation()
            if args.reset:
                from ipyllmapps.widgets.chat import show_note

                show_note(f"There was no conversation with {name} to clear.")
                if not args.history:
                    return
        if args.reset:
            conversation.reset()
        if args.system is not None:
            conversation.system = args.system.strip()
        if args.history:
            from ipyllmapps.widgets.chat import show_history

            show_history(name, conversation.system, conversation.turns)
            return
        if not message:
            from ipyllmapps.widgets.chat import show_note

            show_note(
                f"The conversation with {name} was cleared."
                if args.reset
                else f"The system prompt of {name} is set."
            )
            return

        bundle = entry.bundle
        if args.max_new_tokens is None:
            sampling.max_new_tokens = min(CHAT_MAX_NEW_TOKENS, bundle.context // 2)
        prompt, dropped = lm.fit_history(
            bundle, conversation, message, sampling.max_new_tokens
        )
        self._reply(name, bundle, conversation, message, prompt, dropped, sampling)

    def _loaded_name(self, source):
        for record in self.manager.list():
            if record["task"] == "lm" and source in (record["name"], record["source"]):
                return record["name"]
        return None

    def wait(self, name):
        """Wait until the reply that ``name`` is writing, if any, has ended."""
        view = self.views.get(name)
        if view is not None:
            view.wait()

    def _reply(self, name, bundle, conversation, message, prompt, dropped, sampling):
        from ipyllmapps.models import lm
        from ipyllmapps.widgets.chat import ChatView

        notice = ""
        if dropped:
            notice = (
                f"The {dropped // 2} oldest exchange(s) were dropped to fit "
                f"{name}'s {bundle.context}-token context."
            )
        stop = threading.Event()

        def finish(text):
            reply = lm.clean_reply(bundle, text)
            conversation.turns.extend(
                [
                    {"role": "user", "content": message},
                    {"role": "assistant", "content": reply},
                ]
            )
            return reply

        view = ChatView(name, message, notice=notice, on_stop=stop.set).show()
        self.views[name] = view
        view.stream(lm.stream(bundle, prompt, sampling, stop), on_done=finish)
        if getattr(self.shell, "kernel", None) is None:
            # Outside a kernel (a script, a test) no Stop button can be clicked
            # and no view shows an error: finish the reply here, as a call would.
            view.wait()
            if view.failure is not None:
                raise view.failure

    @magic_arguments()
    @argument("prompt", nargs="*", help="the prompt (in `%%%%generate`: one per line)")
    @argument(
        "-m",
        "--model",
        help="model name, hub id, folder or .gguf file "
        "(default: `%%config LLMApps.chat_model`, `smollm2`)",
    )
    @argument(
        "--max-new-tokens",
        type=int,
        default=50,
        help="tokens added to each prompt (default 50)",
    )
    @argument(
        "-n",
        "--num-return",
        type=int,
        default=5,
        help="continuations per prompt, 1 to 50 (default 5)",
    )
    @argument(
        "--no-repeat-ngram",
        type=int,
        default=2,
        help="never repeat a run of this many tokens, 0 for off (default 2)",
    )
    @argument(
        "--temperature",
        type=float,
        default=0.7,
        help="randomness from 0 (greedy / beam search) to 10 (default 0.7)",
    )
    @argument(
        "--top-p", type=float, default=0.95, help="nucleus sampling mass (default 0.95)"
    )
    @argument("--seed", type=int, help="random seed, for output you can reproduce")
    @argument("-o", "--out", help="store the continuations in this variable")
    @no_var_expand
    @line_cell_magic
    @user_errors
    def generate(self, line, cell=None):
        """Continue prompts with a language model, several ways each.

        In ``%%generate`` each non-blank line of the cell is one prompt; the
        prompts run as one batch, and each gives what it would give alone.
        The defaults follow the classic GPT-2 recipe: five continuations of
        up to 50 new tokens, never repeating a pair of tokens.
        ``{var}`` and ``$var`` are not expanded: prompts are used as typed.

        Examples
        --------
        ::

            %generate What is your favorite color?
            %generate "nice to meet you" -n 3 --temperature 0.9 --seed 1
            %generate -m ./my-gpt2 Hello there --max-new-tokens 30 -o replies

            %%generate --temperature 0 -n 1
            Hi
            The best way to learn a language is
        """
        from ipyllmapps.models import lm
        from ipyllmapps.widgets.chat import show_generations

        args = parse(self.generate, line)
        if args is None:
            return
        prompts = _prompts(args.prompt, cell)
        sampling = lm.Sampling(
            max_new_tokens=args.max_new_tokens,
            num_return=args.num_return,
            no_repeat_ngram=args.no_repeat_ngram,
            temperature=args.temperature,
            top_p=args.top_p,
            seed=args.seed,
        ).check()
        if args.out:
            check_variable_name(args.out)

        entry = self.manager.load(args.model or self.config_obj.chat_model, "lm")
        results = lm.generate(entry.bundle, prompts, sampling)

        show_generations(entry.name, list(zip(prompts, results)))
        self.store(
            args.out,
            [
                {"prompt": prompt, "n": number, "text": text}
                for prompt, texts in zip(prompts, results)
                for number, text in enumerate(texts, start=1)
            ],
        )


def _prompts(words, cell):
    if cell is not None:
        if words:
            raise UserError(
                "`%%generate` takes its prompts from the cell, one per line: "
                "move `" + " ".join(words) + "` into the cell."
            )
        prompts = [text.strip() for text in cell.splitlines() if text.strip()]
        if not prompts:
            raise UserError(
                "The `%%generate` cell is empty: write one prompt per line."
            )
        return prompts
    prompt = " ".join(words)
    if not prompt.strip():
        raise UserError(
            "`%generate` needs a prompt: `%generate What is your favorite color?`."
        )
    return [prompt]


@magic_arguments(name="finetune lm")
@argument("--data", required=True, help="a UTF-8 text file to learn from")
@argument("--base", help="model to start from (default: `%%config LLMApps.chat_model`)")
@argument(
    "--block-size",
    type=int,
    default=128,
    help="tokens per training example (default 128)",
)
@argument("--epochs", type=int, default=3, help="passes over the text (default 3)")
@argument("--lr", type=float, default=5e-5, help="learning rate (default 5e-5)")
@argument("--batch-size", type=int, default=8, help="blocks per step (default 8)")
@argument("--name", help="name of the trained model (default: BASE-ft)")
@argument("--save", help="also save the trained model to this folder")
@argument("-o", "--out", help="store the loss per epoch in this variable")
def finetune_lm(line):
    """Fine-tune a causal language model on a text file.

    The text is cut into blocks of ``--block-size`` tokens and the model
    learns to predict each next token. A progress bar and a live loss plot
    show the run; Ctrl-C stops it and keeps the last finished epoch. The
    trained model is held by the model manager under ``--name``, ready for
    ``%generate -m NAME`` and ``%%chat -m NAME``.

    Examples
    --------
    ::

        %finetune lm --data dialogue.txt --name chatty
        %finetune lm --data dialogue.txt --base ./my-gpt2 --epochs 3 --lr 1e-4
        %finetune lm --data notes.txt --block-size 64 --save ./chatty
    """


def finetune(magics, line):
    """Run ``%finetune lm ...``: parse, train with live plots, register the model."""
    from ipyllmapps.models import lm
    from ipyllmapps.widgets.training import TrainingView

    args = parse(finetune_lm, line)
    if args is None:
        return
    path = Path(args.data).expanduser()
    if not path.is_file():
        raise UserError(
            f"No file `{args.data}`: pass a text file, like `--data dialogue.txt`."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        raise UserError(
            f"`{args.data}` cannot be read as UTF-8 text ({exc.__class__.__name__}"
            "): save it as a plain .txt file."
        ) from None
    for bad, message in [
        (args.block_size < 8, "`--block-size` must be at least 8, like 128"),
        (args.epochs < 1, "`--epochs` must be at least 1, like 3"),
        (args.batch_size < 1, "`--batch-size` must be at least 1, like 8"),
    ]:
        if bad:
            raise UserError(message + ".")
    check_rate(args.lr, "--lr", "5e-5")
    if args.out:
        check_variable_name(args.out)

    entry = magics.manager.load(args.base or magics.config_obj.chat_model, "lm")
    data = lm.blocks(entry.bundle, text, args.block_size)
    steps = -(-len(data) // args.batch_size) * args.epochs
    view = TrainingView(f"Fine-tuning {entry.name} on {path.name}", steps).show()
    trained, result, before, after = lm.finetune(
        entry.bundle,
        data,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        on_step=lambda loss: view.step(loss=loss),
        on_epoch=lambda epoch, loss: view.epoch(epoch, epoch_loss=loss),
    )

    name = args.name or f"{entry.name}-ft"
    keep = bool(result.epochs) and math.isfinite(after)
    if keep:
        magics.manager.register(name, trained, "lm", source=str(path))
    if args.save and keep:
        trained.model.save_pretrained(args.save)
        trained.tokenizer.save_pretrained(args.save)
    view.finish(_summary(name, result, before, after, args.save, args.lr))
    magics.store(args.out, result.epochs)


def _summary(name, result, before, after, saved, lr):
    if not result.epochs:
        return "stopped before the first epoch ended; nothing was kept."
    if not math.isfinite(after):
        return (
            f"the loss became {after} (training diverged); nothing was kept: "
            f"try a lower `--lr` than {lr:g}, like 5e-5."
        )
    done = len(result.epochs)
    text = (
        f"loss {before:.3f} → {after:.3f} after {done} epoch(s); "
        f"use it with `-m {name}`"
    )
    if saved:
        text += f"; saved to {saved}"
    if result.interrupted:
        text += " (interrupted: the last finished epoch is kept)"
    return text

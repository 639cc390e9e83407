"""``%models``: list, load, unload, pin and move the kernel's models."""

from IPython.core.magic import line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from ipyllmapps.errors import UserError, user_errors
from ipyllmapps.magics._base import AppMagics, parse
from ipyllmapps.models import BUNDLED, task_of

_SUBCOMMANDS = ("list", "load", "unload", "pin", "unpin", "to", "budget")


@magics_class
class ModelsMagics(AppMagics):
    """The ``%models`` magic."""

    @magic_arguments()
    @argument(
        "command",
        nargs="?",
        default="list",
        help=f"one of {', '.join(_SUBCOMMANDS)} (default: list)",
    )
    @argument("args", nargs="*", help="the subcommand's arguments")
    @argument("--name", help="name for `load` (default: from the source)")
    @argument(
        "--task",
        help="application for `load` when SOURCE is not bundled: "
        "classify, embed, image, asr, gan or lm",
    )
    @argument("--device", help="device for `load`: cpu, cuda, cuda:N")
    @argument("--dtype", help="dtype for `load`: float32, float16, bfloat16")
    @argument("--all", action="store_true", help="with `unload`: every model")
    @argument("-o", "--out", help="store the table of models in this variable")
    @no_var_expand
    @line_magic
    @user_errors
    def models(self, line):
        """Show and manage the models this kernel holds in memory.

        Examples
        --------
        ::

            %models                          # table with Unload / Pin buttons
            %models load sentiment
            %models load ./my-bert --task classify --name mine
            %models unload mine              # or: %models unload --all
            %models pin sentiment
            %models to sentiment cuda
            %models budget 6GB
            %models -o table                 # the table as a DataFrame
        """
        args = parse(self.models, line)
        if args is None:
            return
        command = args.command
        if command not in _SUBCOMMANDS:
            raise UserError(
                f"`%models {command}` is not a subcommand: use one of "
                f"{', '.join(_SUBCOMMANDS)}."
            )
        getattr(self, f"_{command}")(args)
        self.store(args.out, self.manager.list())
        if command in ("list", "load", "to", "budget") and not args.out:
            self._show()

    def _list(self, args):
        _expect(args, 0, "%models")

    def _load(self, args):
        source = _expect(args, 1, "%models load SOURCE")[0]
        task = args.task or task_of(source)
        if task is None:
            aliases = ", ".join(f"`{a}`" for a in BUNDLED)
            raise UserError(
                f"`{source}` is not a bundled model, so say what it is for: "
                f"`%models load {source} --task classify` (bundled: {aliases})."
            )
        self.manager.load(
            source, task, device=args.device, dtype=args.dtype, name=args.name
        )

    def _unload(self, args):
        if args.all:
            _expect(args, 0, "%models unload --all")
            self.manager.unload_all()
        else:
            self.manager.unload(_expect(args, 1, "%models unload NAME")[0])

    def _pin(self, args):
        self.manager.pin(_expect(args, 1, "%models pin NAME")[0])

    def _unpin(self, args):
        self.manager.pin(_expect(args, 1, "%models unpin NAME")[0], False)

    def _to(self, args):
        name, device = _expect(args, 2, "%models to NAME DEVICE")
        self.manager.move(name, device)

    def _budget(self, args):
        self.manager.set_budget(_expect(args, 1, "%models budget 6GB")[0])

    def _show(self):
        from ipyllmapps.widgets.models import ModelsTable

        manager = self.manager
        ModelsTable(manager.list, manager.unload, manager.pin).show()


def _expect(args, count, usage):
    if len(args.args) != count:
        raise UserError(
            f"`%models {args.command}` takes {count} argument(s): `{usage}`."
        )
    return args.args

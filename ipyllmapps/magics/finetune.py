"""``%finetune TASK ...``: fine-tune a model for one application.

Each application owns its training flags: this magic only picks the
application from the first word and hands it the rest of the line.
"""

import importlib

from IPython.core.magic import line_magic, magics_class, no_var_expand

from ipyllmapps.errors import UserError, user_errors
from ipyllmapps.magics._base import AppMagics

# task -> "module:function(magics, line)" in the application's magics module
TASKS = {
    "classify": "ipyllmapps.magics.classify:finetune",
    "image": "ipyllmapps.magics.image:finetune",
    "lm": "ipyllmapps.magics.chat:finetune",
}


@magics_class
class FinetuneMagics(AppMagics):
    """The ``%finetune`` magic."""

    @no_var_expand
    @line_magic
    @user_errors
    def finetune(self, line):
        """Fine-tune a model on your data, with live progress and plots.

        ``%finetune TASK --help`` lists the flags of one task.

        Examples
        --------
        ::

            %finetune classify --data reviews.csv --epochs 3 --name mine
            %finetune image --data pets/ --base resnet18 --name pets
            %finetune lm --data dialogue.txt --base smollm2 --name chatty
        """
        task, _, rest = line.strip().partition(" ")
        if task in ("", "-h", "--help"):
            print(self.finetune.__doc__)
            return None
        if task not in TASKS:
            raise UserError(
                f"`%finetune {task}` is not a task: use "
                + ", ".join(f"`%finetune {t} --data ...`" for t in TASKS)
                + "."
            )
        module_name, function = TASKS[task].split(":")
        handler = getattr(importlib.import_module(module_name), function)
        return handler(self, rest)

"""``%models``, the extension's life cycle, settings and parsing rules."""

import subprocess
import sys

import pytest

from tests.conftest import run, usage_error


def test_import_and_load_ext_do_not_import_torch():
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'ipyllmapps')\n"
        "heavy = ('torch', 'transformers', 'tensorflow', 'keras')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print(heavy)\n"
        "print(sorted(ip.magics_manager.lsmagic()['line']))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "[]"
    assert "models" in out[1] and "finetune" in out[1]


def test_unload_ext_unloads_models_and_magics(shell):
    shell.user_ns["loader"] = _tiny_loader
    run(shell, "import ipyllmapps\nipyllmapps.manager().load('a', 'demo', loader)")
    manager = shell.user_ns["ipyllmapps"].manager()
    shell.extension_manager.unload_extension("ipyllmapps")
    assert len(manager) == 0
    assert "models" not in shell.magics_manager.magics["line"]
    shell.extension_manager.load_extension("ipyllmapps")  # the fixture unloads it again


def test_reload_ext_leaves_one_set_of_state(shell):
    hooks = len(shell.events.callbacks["pre_run_cell"])
    run(shell, "%reload_ext ipyllmapps")
    run(shell, "%reload_ext ipyllmapps")
    names = [c for c in shell.configurables if type(c).__name__ == "LLMApps"]
    assert len(names) == 1
    assert len(shell.events.callbacks["pre_run_cell"]) == hooks
    shell.extension_manager.unload_extension("ipyllmapps")
    assert len(shell.events.callbacks["pre_run_cell"]) < hooks
    shell.extension_manager.load_extension("ipyllmapps")  # the fixture unloads it


def test_models_table_widget_and_fallback(shell, capsys):
    shell.user_ns["loader"] = _tiny_loader
    run(shell, "import ipyllmapps\nipyllmapps.manager().load('tiny', 'demo', loader)")
    from ipyllmapps.widgets.models import ModelsTable

    manager = shell.user_ns["ipyllmapps"].manager()
    table = ModelsTable(manager.list, manager.unload, manager.pin)
    row = table.rows.children[0]
    assert "tiny" in row.children[0].value
    pin, unload = row.children[1], row.children[2]
    pin.value = True
    assert manager.list()[0]["pinned"] is True
    unload.click()
    assert len(manager) == 0
    assert "No model is loaded" in table.rows.children[0].value
    pin.value = False  # a row of a model that is gone: the error shows under the table
    assert "No model named `tiny` is loaded" in table.output.outputs[-1]["text"]
    assert not pin.disabled


def test_models_output_has_text_fallback(shell):
    shell.user_ns["loader"] = _tiny_loader
    run(shell, "import ipyllmapps\nipyllmapps.manager().load('tiny', 'demo', loader)")
    shown = []
    shell.display_pub.publish = lambda data, **kw: shown.append(data)
    run(shell, "%models")
    data = shown[-1]
    assert "tiny" in data["text/plain"] and "<table>" in data["text/html"]
    assert "application/vnd.jupyter.widget-view+json" in data


def test_models_out_stores_a_table(shell):
    shell.user_ns["loader"] = _tiny_loader
    run(shell, "import ipyllmapps\nipyllmapps.manager().load('tiny', 'demo', loader)")
    run(shell, "%models -o table")
    table = shell.user_ns["table"]
    assert list(table["name"]) == ["tiny"]
    assert int(table["parameters"][0]) == 16 * 16


def test_models_subcommands(shell):
    shell.user_ns["loader"] = _tiny_loader
    run(shell, "import ipyllmapps\nipyllmapps.manager().load('tiny', 'demo', loader)")
    run(shell, "%models pin tiny")
    run(shell, "%models unpin tiny")
    run(shell, "%models to tiny cpu")
    run(shell, "%models budget 512MB")
    assert shell.user_ns["ipyllmapps"].manager().budget_bytes("cpu") == 512 * 2**20
    run(shell, "%models unload --all")
    assert len(shell.user_ns["ipyllmapps"].manager()) == 0


@pytest.mark.parametrize(
    "line, message",
    [
        ("%models frob", "`%models frob` is not a subcommand: use one of list, load"),
        (
            "%models unload",
            "`%models unload` takes 1 argument(s): `%models unload NAME`",
        ),
        ("%models unload ghost", "No model named `ghost` is loaded"),
        (
            "%models budget lots",
            "`lots` is not a memory size: write a positive size like",
        ),
        ("%models budget inf", "`inf` is not a memory size"),
        ("%models budget 0", "`0` is not a memory size"),
        ("%models load minilm --dtype int8", "`int8` is not a dtype: use one of auto"),
        (
            "%models load ./nowhere",
            "`./nowhere` is not a bundled model, so say what it is for",
        ),
        ("%models --bogus", "unrecognized arguments: --bogus"),
        ("%models load 'my model", "No closing quotation"),
        ("%models to tiny gpu9", "`gpu9`"),
        ("%models -o 1x", "`-o 1x` is not a variable name you can use"),
        ("%models -o class", "`-o class` is not a variable name you can use"),
        ("%models -o Out", "`-o Out` is not a variable name you can use"),
    ],
)
def test_user_mistakes_print_one_line(shell, capsys, line, message):
    shell.user_ns["loader"] = _tiny_loader
    run(shell, "import ipyllmapps\nipyllmapps.manager().load('tiny', 'demo', loader)")
    assert message in usage_error(shell, line, capsys)


def test_no_variable_expansion(shell, capsys):
    """Case P2: `{x}` and `$x` reach the magic as typed, never expanded."""
    run(shell, "x = 'tiny'")
    assert "`{x}`" in usage_error(shell, "%models unload {x}", capsys)
    assert "`$x`" in usage_error(shell, "%models unload $x", capsys)


def test_quoted_values_stay_whole(shell):
    """Case P1: a quoted value with spaces arrives as one argument."""
    shell.user_ns["loader"] = _tiny_loader
    run(shell, "import ipyllmapps\nipyllmapps.manager().load('tiny', 'demo', loader)")
    run(shell, "%models pin 'tiny'")
    assert shell.user_ns["ipyllmapps"].manager().list()[0]["pinned"]


def test_help_prints_the_documentation(shell, capsys):
    run(shell, "%models --help")
    assert "%models budget 6GB" in capsys.readouterr().out
    run(shell, "%finetune --help")
    assert "%finetune image --data pets/" in capsys.readouterr().out


def test_quoted_help_is_not_a_flag():
    from ipyllmapps.magics._base import wants_help

    assert wants_help("--help") and wants_help("load x -h")
    assert not wants_help('"-h" is a prompt') and not wants_help("'--help'")


@pytest.mark.parametrize(
    "setting",
    [
        'LLMApps.device = "gpu"',
        'LLMApps.budget = "abc"',
        "LLMApps.models_per_task = -1",
        'LLMApps.classify_model = ""',
        'LLMApps.dtype = "int8"',
    ],
)
def test_invalid_settings_keep_their_value(shell, setting):
    import ipyllmapps

    config = ipyllmapps.manager().config
    name = setting.split("=")[0].split(".")[1].strip()
    before = getattr(config, name)
    shell.run_cell(f"%config {setting}")
    assert getattr(config, name) == before


def test_full_tracebacks_setting(shell):
    run(shell, "%config LLMApps.full_tracebacks = True")
    result = shell.run_cell("%models unload ghost")
    assert type(result.error_in_exec).__name__ == "UserError"


def _tiny_loader(source, *, device, dtype, offline):
    import torch

    from ipyllmapps.manager import Bundle

    return Bundle(model=torch.nn.Linear(16, 16, bias=False))

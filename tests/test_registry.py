import pytest
import torch

from pyanomaly.registry import (DATASETS, HOOKS, MODELS, NETWORKS, SCORERS, RegistryError, build,
                                import_plugins, registered_names)


def test_builtins_are_registered_lazily():
    assert "PredNet" in registered_names(NETWORKS)
    assert {"PredNetPredictor", "FramePredictor"} <= set(registered_names(MODELS))
    assert {"synthetic", "folder"} <= set(registered_names(DATASETS))
    assert {"PSNR", "MSE"} <= set(registered_names(SCORERS))
    assert {"EvalHook", "CheckpointHook", "LoggerHook"} <= set(registered_names(HOOKS))


def test_unknown_name_lists_names_and_closest_match():
    with pytest.raises(RegistryError) as err:
        build(NETWORKS, dict(type="PredNett"))
    msg = str(err.value)
    assert "unknown network 'PredNett'" in msg
    assert "Did you mean 'PredNet'?" in msg
    assert "PredNet" in msg.split("Registered networks:")[1]


def test_unknown_argument_is_named():
    with pytest.raises(RegistryError, match=r"unknown argument\(s\) \['stack_size'\]"):
        build(NETWORKS, dict(type="PredNet", stack_size=(1, 8)))


def test_missing_argument_is_named():
    with pytest.raises(RegistryError, match="R_stack_sizes"):
        build(NETWORKS, dict(type="PredNet", stack_sizes=(1, 8)))


def test_outside_plugin_is_imported_by_name(tmp_path):
    (tmp_path / "my_outside_net.py").write_text(
        "import torch\n"
        "from pyanomaly.registry import NETWORKS\n"
        "@NETWORKS.register_module()\n"
        "class OutsideNet(torch.nn.Module):\n"
        "    def __init__(self, scale: float = 2.0):\n"
        "        super().__init__(); self.scale = scale\n"
        "    def forward(self, x): return x * self.scale\n")
    import_plugins(["my_outside_net"], [tmp_path])
    net = build(NETWORKS, dict(type="OutsideNet", scale=3.0))
    assert torch.equal(net(torch.ones(2)), torch.full((2,), 3.0))


def test_missing_plugin_module_is_a_clear_error():
    with pytest.raises(ModuleNotFoundError, match="SYSTEM.IMPORTS: cannot import plugin module 'no_such_mod'"):
        import_plugins(["no_such_mod"])


def test_every_registry_imports_its_builtins():
    from mmengine.registry import Registry

    import pyanomaly.registry as registry
    registries = {name: obj for name, obj in vars(registry).items() if isinstance(obj, Registry)}
    assert {"NETWORKS", "MODELS", "DATASETS", "TRANSFORMS", "LOSSES", "SCORERS", "NORMALIZERS", "EVALUATORS",
            "HOOKS"} <= set(registries)
    for name, reg in registries.items():
        assert registered_names(reg), f"{name} has no built-in parts (do its locations import?)"

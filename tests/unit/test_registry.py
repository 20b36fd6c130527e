from __future__ import annotations

import pytest

from edgebench.errors import ConfigError, UnknownNameError
from edgebench.registry import Registry


def test_register_get_names_and_did_you_mean() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("alpha")(1)
    reg.register("beta")(2)
    assert reg.get("alpha") == 1 and "beta" in reg and reg.names() == ["alpha", "beta"]
    with pytest.raises(UnknownNameError) as info:
        reg.get("alpah", where="plan.toml: widgets[0]")
    assert str(info.value) == ("plan.toml: widgets[0]: unknown widget 'alpah'. Did you mean 'alpha'? "
                               "Known widgets: alpha, beta")
    with pytest.raises(ConfigError, match="registered twice"):
        reg.register("alpha")(3)


def test_lazy_modules_register_on_first_lookup() -> None:
    from edgebench.attacks import ATTACKS
    from edgebench.runtime import BACKENDS

    assert {"fgsm", "pgd"} <= set(ATTACKS.names())
    assert {"onnxruntime", "null"} <= set(BACKENDS.names())

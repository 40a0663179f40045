"""Installing with uv (when installed) or pip: selection, the fallback, pip's configuration
carried over to uv, and the base's packages reused rather than copied."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.helpers import assert_user_error, created, kernelctl, leftovers, run_in_kernel, session_of


def installer_of(venv: str, distribution: str) -> str:
    """Which tool installed a distribution into the venv (its INSTALLER file)."""
    site = next(Path(venv).glob("lib/python*/site-packages"))
    record = next(site.glob(f"{distribution}-*.dist-info"))
    return (record / "INSTALLER").read_text().strip()


def test_uv_by_default_pip_when_asked(prgenv_image, test_wheels):
    session = session_of(prgenv_image)
    offline = ["--no-index", "--find-links", test_wheels]
    by_default = created("--base", "prgenv-gnu", "--name", "fast", "-p", "kctl_shadow==2.0",
                         *offline, env=session)
    assert installer_of(by_default["venv"], "kctl_shadow") == "uv"
    with_pip = created("--base", "prgenv-gnu", "--name", "slow", "-p", "kctl_shadow==2.0",
                       "--installer", "pip", *offline, env=session)
    assert installer_of(with_pip["venv"], "kctl_shadow") == "pip"
    for name in ("fast", "slow"):  # the venv's 2.0 wins over the image's 1.0 either way
        assert run_in_kernel(name, "import kctl_shadow; print(kctl_shadow.__version__)",
                             session).strip() == "2.0"
    done = kernelctl("install", "slow", "-p", "kctl_extra", "--installer", "uv", *offline,
                     env=session)
    assert done.returncode == 0, done.stderr
    assert installer_of(with_pip["venv"], "kctl_extra") == "uv"


def test_without_uv_auto_falls_back_to_pip_and_uv_is_refused(prgenv_image, test_wheels):
    session = {**session_of(prgenv_image), "KERNELCTL_UV": "/nonexistent/uv"}
    offline = ["--no-index", "--find-links", test_wheels]
    kernel = created("--base", "prgenv-gnu", "-p", "kctl_shadow==2.0", *offline, env=session)
    assert installer_of(kernel["venv"], "kctl_shadow") == "pip"
    home = Path(os.environ["HOME"])
    before = leftovers(home)
    refused = kernelctl("create", "--base", "prgenv-gnu", "--name", "other", "--installer", "uv",
                        *offline, env=session)
    assert_user_error(refused, "uv is not installed", "--installer pip")
    assert_user_error(kernelctl("create", "--base", "prgenv-gnu", "--installer", "conda",
                                env=session), "unknown installer 'conda'")
    assert leftovers(home) == before


def test_uv_follows_the_sites_pip_configuration_and_reuses_the_base(prgenv_image, test_wheels,
                                                                    tmp_path):
    """A site's pip.conf says: offline, wheels here. uv never reads it; kernelctl must."""
    config = tmp_path / "pip.conf"
    config.write_text(f"[global]\nno-index = true\nfind-links = {test_wheels}\n")
    session = {**session_of(prgenv_image), "PIP_CONFIG_FILE": str(config)}
    kernel = created("--base", "prgenv-gnu", "-p", "kctl_extra", "--installer", "uv",
                     env=session)
    assert installer_of(kernel["venv"], "kctl_extra") == "uv"
    site = next(Path(kernel["venv"]).glob("lib/python*/site-packages"))
    # ipykernel and kctl_shadow come from the image: not copied into the venv.
    assert not list(site.glob("ipykernel*")) and not list(site.glob("kctl_shadow*"))
    # An environment variable wins over the file, as in pip.
    elsewhere = {**session, "PIP_FIND_LINKS": str(tmp_path / "empty")}
    (tmp_path / "empty").mkdir()
    done = kernelctl("create", "--base", "prgenv-gnu", "--name", "nowhere", "-p",
                     "kctl_shadow==2.0", "--installer", "uv", env=elsewhere)
    assert_user_error(done, "found no distribution of kctl_shadow", str(tmp_path / "empty"))


def test_pip_settings_map_to_uv_options(tmp_path):
    from kernelctl.installers import pip_settings

    config = tmp_path / "pip.conf"
    config.write_text("[global]\nindex-url = https://mirror.example/simple\n"
                      "extra-index-url = https://a.example/simple https://b.example/simple\n"
                      "find-links = /w1 /w2\nconstraint = /c.txt\n")
    env = {**os.environ, "PIP_CONFIG_FILE": str(config),
           "PIP_INDEX_URL": "https://env.example/simple"}
    options = pip_settings(Path(sys.executable), env)
    assert options == ["--index-url", "https://env.example/simple",
                       "--extra-index-url", "https://a.example/simple",
                       "--extra-index-url", "https://b.example/simple",
                       "--find-links", "/w1", "--find-links", "/w2", "--constraint", "/c.txt"]
    offline = pip_settings(Path(sys.executable), {**env, "PIP_NO_INDEX": "1"})
    assert offline[0] == "--no-index"
    # One value per line, as sites write wheelhouses.
    config.write_text("[global]\nfind-links =\n    /w1\n    /w2\n")
    # (pip also reads the machine's global files: what they add comes after.)
    assert pip_settings(Path(sys.executable), {**os.environ, "PIP_CONFIG_FILE": str(config)}
                        )[:4] == ["--find-links", "/w1", "--find-links", "/w2"]


def test_uv_keeps_the_bases_copy_of_a_dependency_the_wheelhouse_has_in_another_version(
        prgenv_image, tmp_path):
    """The image has kctl_shadow 1.0; the wheelhouse only 2.0. A package that needs
    kctl_shadow>=1.0 must use the image's copy (as pip does), not pull 2.0 into the venv
    to shadow it."""
    from tests.wheels import build_wheel

    wheels = tmp_path / "wheels"
    build_wheel(wheels, "kctl_shadow", "2.0")
    build_wheel(wheels, "kctl_needs", "1.0", requires=("kctl_shadow>=1.0",))
    session = session_of(prgenv_image)
    kernel = created("--base", "prgenv-gnu", "-p", "kctl_needs", "--installer", "uv",
                     "--no-index", "--find-links", wheels, env=session)
    assert installer_of(kernel["venv"], "kctl_needs") == "uv"
    site = next(Path(kernel["venv"]).glob("lib/python*/site-packages"))
    assert not list(site.glob("kctl_shadow*"))
    assert run_in_kernel(kernel["name"], "import kctl_shadow; print(kctl_shadow.__version__)",
                         session).strip() == "1.0"

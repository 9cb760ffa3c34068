"""allosaurus for real: its own loader runs, and a model it cannot download is a clear error.

The model is not installed here (allosaurus fetches it from GitHub on first use), so the
recognition itself cannot run; its output parsing is tested on allosaurus' documented format.
"""

import socket
import threading
import time
import urllib.request

import pytest

from bridge_server.core.errors import EngineUnavailable
from bridge_server.engines import allosaurus

pytest.importorskip("allosaurus")


@pytest.fixture
def no_model():
    if allosaurus._installed("latest") is not None:
        pytest.skip("an allosaurus model is installed here")
    pytest.importorskip("allosaurus.app")  # imports torch (seconds), kept out of the timings
    yield
    assert not list(allosaurus._pretrained().glob("*")), "a failed download left files behind"


@pytest.mark.slow
def test_check_says_the_model_is_missing_and_how_to_install_it(no_model):
    with pytest.raises(EngineUnavailable) as e:
        allosaurus.check_allosaurus()
    assert str(e.value) == (
        "the allosaurus model 'latest' is not installed; fix: on a connected machine run "
        "`python -m allosaurus.bin.download_model -m latest`, or copy a downloaded model folder "
        f"(e.g. uni2005) into {allosaurus._pretrained()}/"
    )


@pytest.mark.slow
@pytest.mark.parametrize("model", ["latest", "eng2102"])
def test_loading_tries_the_download_and_fails_fast(no_model, model, capsys):
    started = time.perf_counter()
    with pytest.raises(EngineUnavailable) as e:
        allosaurus.create_allosaurus(model)
    assert time.perf_counter() - started < 5  # measured 0.1 s: the name lookup fails
    message = str(e.value)
    assert f"model '{model}' is not installed and could not be downloaded" in message
    assert f"python -m allosaurus.bin.download_model -m {model}" in message
    assert str(allosaurus._pretrained()) in message
    out, err = capsys.readouterr()
    assert out == "" and "could not download" in err  # allosaurus' prints kept off stdout
    assert socket.getdefaulttimeout() is None


@pytest.mark.slow
def test_a_blocked_network_times_out_instead_of_hanging(no_model, monkeypatch):
    """A proxy that accepts and never answers stands for a firewall that drops packets."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setattr(urllib.request, "_opener", None)  # urlopen caches proxies on first use
    monkeypatch.setattr(allosaurus, "DOWNLOAD_TIMEOUT_S", 1.0)
    started = time.perf_counter()
    with pytest.raises(EngineUnavailable, match="could not be downloaded"):
        allosaurus.create_allosaurus()
    assert time.perf_counter() - started < 5  # measured ~1 s: the timeout, once
    assert held, "the download never reached the network"
    server.close()


def test_timestamped_output_becomes_project_ipa():
    """allosaurus prints 'start window phone' per emitted phone (lm/decoder.py)."""
    lines = "0.210 0.025 h\n0.300 0.025 ɛ\n0.420 0.025 l\n0.480 0.025 oʊ\n1.500 0.025 ʔ"
    warnings: list[str] = []
    phones = allosaurus._phonemes(lines, duration=1.6, offset=2.0, warnings=warnings)
    assert [(p.ipa, round(p.start, 3), round(p.end, 3)) for p in phones] == [
        ("h", 2.21, 2.3),
        ("ɛ", 2.3, 2.42),
        ("l", 2.42, 2.48),
        ("oʊ", 2.48, 2.73),  # held until the next phone, at most MAX_PHONE_S
        ("ʔ", 3.5, 3.6),  # the last one ends with the audio
    ]
    assert all(p.word == -1 for p in phones)

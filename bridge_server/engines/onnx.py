"""The project's own ONNX models, opened one way: a missing file or onnxruntime is
EngineUnavailable and a file that is not a readable model is InputError, each saying the fix."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import EngineUnavailable, InputError


def session(path: str | Path, what: str, remedy: str, threads: int = 0):
    """An onnxruntime session (CPU) for `path`. `what` names the model ("motion model"),
    `remedy` what to do without it ("train one with `...`, or use --motion rules"); `threads`
    caps its threads (0: onnxruntime's choice)."""
    path = Path(path)
    if not path.is_file():
        raise EngineUnavailable(f"no {what} at {path}; fix: {remedy}")
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise EngineUnavailable(
            f"onnxruntime is not installed ({e}); fix: .venv/bin/pip install onnxruntime"
        ) from e
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors come back as exceptions, not console noise
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise InputError(f"{path} is not a readable ONNX model "
                         f"({str(e).splitlines()[0][:200]}); fix: {remedy}") from e  # fmt: skip

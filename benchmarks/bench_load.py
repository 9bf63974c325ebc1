"""Load, fuzz and fault checks against the real app (``python app.py``) on 127.0.0.1.

    python -m benchmarks.bench_load                 # 8 clients for 60 s, fuzz, faults, fault/fuzz tests
    python -m benchmarks.bench_load --clients 8 --seconds 60 --no-tests
    python -m benchmarks.bench_load --seconds 120 --compare-env MALLOC_ARENA_MAX=2
    python -m benchmarks.bench_load --clients 4 --seconds 20 --load-only   # quick error check, writes nothing

1. **Load**: the app runs in a subprocess exactly as deployed (``python
   app.py --port P --suspects DIR``, default limits).  One person is
   enrolled through the API, then ``--clients`` threads, each with its own
   ``gradio_client.Client`` (its own session, like separate users), send
   requests back to back for ``--seconds``: ``/detect`` (group photo),
   ``/identify`` (a photo of the enrolled person), ``/analyse`` (a 720p CCTV
   frame) and ``/scan_video`` (the 2 s example clip, every 5th frame); every
   fifth turn a client submits two jobs at once, which the per-user limit
   must answer with the busy message.  Every request must get an answer
   (180 s at most each) that is either a result or the busy message.
   The server's resident memory is sampled from ``/proc`` every 0.25 s.
2. **Fuzz over HTTP**: the malformed images and videos of
   ``tests/test_fuzz.py`` sent to ``/detect`` and ``/scan_video``: each must
   be answered (a result or an error message), and the app must keep serving.
3. **Faults over HTTP**: uploads cut off mid-body with a TCP reset, and a
   client process killed while its scan runs; then the app must still serve.
4. Unless ``--no-tests``: ``pytest tests/test_faults.py tests/test_fuzz.py``
   is run and its outcome per test is reported (read-only and full disks are
   simulated inside the process there, which a subprocess server cannot be).

Writes the ``load`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

from benchmarks._report import ROOT, machine, write_section

FIXTURES = ROOT / "tests" / "fixtures" / "faces"
EXAMPLES = ROOT / "examples"
BUSY_WORDS = ("busy", "queue is full")
ANSWER_TIMEOUT_S = 180.0


# ------------------------------------------------------------------ the server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python app.py`` in a subprocess, its log in a file, its memory read from /proc."""

    def __init__(self, work: Path, extra_args: list[str], extra_env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.suspects = work / "suspects"
        self.log_path = work / "server.log"
        self._log = open(self.log_path, "w")
        env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", TF_CPP_MIN_LOG_LEVEL="2", **(extra_env or {}))
        self.proc = subprocess.Popen([sys.executable, "app.py", "--port", str(self.port), "--suspects",
                                      str(self.suspects), *extra_args], cwd=ROOT, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()

    def wait_ready(self, timeout: float = 240.0):
        from gradio_client import Client

        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the app exited with {self.proc.returncode}; see {self.log_path}:\n"
                                 + self.log_path.read_text()[-3000:])
            try:
                return Client(self.url, verbose=False)
            except Exception:  # noqa: BLE001 -- not listening yet
                time.sleep(1.0)
        raise SystemExit(f"the app did not start within {timeout:.0f} s; see {self.log_path}")

    def rss_kib(self) -> tuple[int, int]:
        """(current RSS, peak RSS) of the server process in KiB, from /proc/PID/status."""
        values = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
        return values.get("VmRSS", 0), values.get("VmHWM", 0)

    def start_sampling(self) -> None:
        def sample() -> None:
            t0 = time.time()
            while not self._stop.is_set() and self.proc.poll() is None:
                try:
                    self.samples.append((time.time() - t0, self.rss_kib()[0]))
                except OSError:
                    break
                self._stop.wait(0.25)

        threading.Thread(target=sample, daemon=True).start()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        self._stop.set()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()

    def tracebacks(self) -> int:
        return self.log_path.read_text(errors="replace").count("Traceback (most recent call last)")

    def traceback_kinds(self) -> Counter:
        """The exception line ending each traceback in the log, counted."""
        kinds: Counter = Counter()
        inside = False
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("Traceback (most recent call last)"):
                inside = True
            elif inside and line and not line.startswith((" ", "\t")):
                if not line.startswith(("The above exception", "During handling")):
                    kinds[line[:160]] += 1
                    inside = False
        return kinds


# ------------------------------------------------------------------ phase 1: load
def _requests(handle_file) -> dict[str, tuple[tuple, str]]:
    toggles = ("off", "off", "off")
    return {
        "detect": ((handle_file(str(EXAMPLES / "group.jpg")),), "/detect"),
        "identify": ((handle_file(str(FIXTURES / "person_a_3.jpg")), 0, *toggles), "/identify"),
        "analyse": ((handle_file(str(EXAMPLES / "arcade_frame_020.jpg")), "blazeface", 0.35, 24, *toggles),
                    "/analyse"),
        "scan_video": ((handle_file(str(EXAMPLES / "arcade_clip.mp4")), 5, False, *toggles), "/scan_video"),
    }


def _classify(exc: BaseException) -> str:
    text = str(exc).lower()
    return "busy" if any(w in text for w in BUSY_WORDS) else "error"


def _check_result(kind: str, result) -> str | None:
    """``None`` when the answer is the right one, else what is wrong with it."""
    if kind == "detect" and len(result[1]["faces"]) != 6:
        return f"detect found {len(result[1]['faces'])} faces, not 6"
    if kind == "identify" and (not result[-1] or result[-1][0]["decision"] != "match"):
        return f"identify did not match the enrolled person: {result[-1][:1]}"
    if kind == "scan_video" and result[-1].get("frames_processed") != 10:
        return f"scan processed {result[-1].get('frames_processed')} frames, not 10"
    return None


def run_load(server: Server, clients: int, seconds: float) -> dict:
    from gradio_client import Client, handle_file

    requests = _requests(handle_file)
    kinds = list(requests)
    records: list[dict] = []
    lock = threading.Lock()
    deadline = time.time() + seconds

    start = time.perf_counter()

    def one(client, kind: str) -> dict:
        args, api = requests[kind]
        t0 = time.perf_counter()
        job = client.submit(*args, api_name=api)
        try:
            result = job.result(timeout=ANSWER_TIMEOUT_S)
            wrong = _check_result(kind, result)
            outcome, message = ("wrong", wrong) if wrong else ("ok", "")
        except TimeoutError:
            outcome, message = "no answer", f"none within {ANSWER_TIMEOUT_S:.0f} s"
        except Exception as exc:  # noqa: BLE001 -- the server's answer, classified
            outcome, message = _classify(exc), str(exc)[:200]
        return {"kind": kind, "outcome": outcome, "message": message, "seconds": time.perf_counter() - t0,
                "client": threading.current_thread().name, "t0": t0 - start, "t1": time.perf_counter() - start}

    def worker(index: int) -> None:
        client = Client(server.url, verbose=False)
        turn = index
        while time.time() < deadline:
            turn += 1
            if turn % 5 == 0:
                # Two jobs at once from one user: the per-user limit must answer one with the busy message.
                results: list[dict] = []
                threads = [threading.Thread(target=lambda: results.append(one(client, "analyse")),
                                            name=f"client{index}") for _ in range(2)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                for r in results:
                    r["kind"] = "analyse x2 (same user)"
                batch = results
            else:
                batch = [one(client, kinds[turn % len(kinds)])]
            with lock:
                records.extend(batch)

    server.start_sampling()
    t0 = time.time()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True, name=f"client{i}") for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 2 * ANSWER_TIMEOUT_S)
    wall = time.time() - t0
    return {"records": records, "wall_s": wall, "samples": list(server.samples)}


# ------------------------------------------------------------------ phase 2: fuzz over HTTP
def _fuzz_corpus(work: Path) -> tuple[dict, dict]:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import test_fuzz  # the same generated corpus the tests use
    finally:
        sys.path.pop(0)
    images = test_fuzz.image_corpus(_mkdir(work / "fuzz_images"))
    videos = test_fuzz.video_corpus(_mkdir(work / "fuzz_videos"))
    return images, videos


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_fuzz(server: Server, work: Path) -> dict:
    from gradio_client import Client, handle_file

    client = Client(server.url, verbose=False)
    images, videos = _fuzz_corpus(work)
    rows = []
    for name, (path, expect) in images.items():
        rows.append(_fuzz_one(client, "image", name, expect, (handle_file(str(path)),), "/detect"))
    must_fail = {"empty.mp4", "random.mp4", "random.avi", "text.mkv", "header_only.mp4", "no_frames.avi"}
    for name, path in videos.items():
        rows.append(_fuzz_one(client, "video", name, "error" if name in must_fail else "either",
                              (handle_file(str(path)), 5, True, "off", "off", "off"), "/scan_video"))
    return {"rows": rows, "alive": server.alive(), "serving": _serving(client)}


def _fuzz_one(client, kind: str, name: str, expect: str, args: tuple, api: str) -> dict:
    t0 = time.perf_counter()
    try:
        client.submit(*args, api_name=api).result(timeout=ANSWER_TIMEOUT_S)
        outcome, message = "result", ""
    except TimeoutError:
        outcome, message = "no answer", ""
    except Exception as exc:  # noqa: BLE001
        outcome, message = "error message", str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
    return {"kind": kind, "name": name, "expect": expect, "outcome": outcome, "message": message,
            "seconds": time.perf_counter() - t0}


def _serving(client) -> bool:
    from gradio_client import handle_file

    try:
        _, result = client.predict(handle_file(str(EXAMPLES / "group.jpg")), api_name="/detect")
        return len(result["faces"]) == 6
    except Exception:  # noqa: BLE001
        return False


# ------------------------------------------------------------------ phase 3: faults over HTTP
_KILLED_CLIENT = r"""
import sys
from gradio_client import Client, handle_file
client = Client(sys.argv[1], verbose=False)
job = client.submit(handle_file(sys.argv[2]), 1, False, "off", "off", "off", api_name="/scan_video")
print("submitted", flush=True)
job.result()
"""


def run_faults(server: Server) -> dict:
    from gradio_client import Client

    out = {}
    boundary = "loadboundary"
    t0 = time.perf_counter()
    for i in range(20):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"cut{i}.mp4\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode()
        sock.sendall((f"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                      f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                      f"Content-Length: {50 * 2**20}\r\n\r\n").encode() + head + os.urandom(2**20))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        sock.close()
    client = Client(server.url, verbose=False)
    out["uploads cut off mid-body (20 x 1 MiB of 50 MiB, TCP reset)"] = (
        server.alive() and _serving(client), time.perf_counter() - t0)

    t0 = time.perf_counter()
    killed = 0
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", _KILLED_CLIENT, server.url, str(EXAMPLES / "arcade_clip.mp4")],
                                stdout=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while time.time() < deadline and "submitted" not in (proc.stdout.readline() or ""):
            pass
        time.sleep(1.0)
        proc.kill()
        proc.wait(10)
        killed += 1
    out[f"client processes killed while their scan runs ({killed})"] = (
        server.alive() and _serving(client), time.perf_counter() - t0)
    return out


# ------------------------------------------------------------------ phase 4: the fault and fuzz tests
def run_tests(work: Path) -> dict:
    xml_path = work / "junit.xml"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml_path}",
                           "tests/test_faults.py", "tests/test_fuzz.py"], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800)
    rows = []
    if xml_path.exists():
        for case in ET.parse(xml_path).getroot().iter("testcase"):
            outcome = "passed"
            reason = ""
            for child in case:
                if child.tag in ("failure", "error"):
                    outcome, reason = "FAILED", (child.get("message") or "")[:160]
                elif child.tag == "skipped":
                    kind = child.get("type") or ""
                    outcome = "xfail (known gap)" if "xfail" in kind or "xfail" in (child.get("message") or "") \
                        else "skipped"
                    reason = (child.get("message") or "")[:240]
            rows.append((case.get("classname", "").rsplit(".", 1)[-1], case.get("name"), outcome, reason))
    return {"rows": rows, "seconds": time.perf_counter() - t0, "summary": proc.stdout.strip().splitlines()[-1:]}


# ------------------------------------------------------------------ report
def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


def _fifths(values: list[int]) -> list[list[int]]:
    n = len(values)
    return [values[i * n // 5:(i + 1) * n // 5] for i in range(5) if values[i * n // 5:(i + 1) * n // 5]]


def _enrol(client) -> None:
    from gradio_client import handle_file

    client.predict("Person A", [handle_file(str(FIXTURES / "person_a_1.jpg")),
                                handle_file(str(FIXTURES / "person_a_2.jpg"))], "", api_name="/suspects_add")


def render(args, load: dict, fuzz: dict, faults: dict, tests: dict | None, server: Server, idle_rss: int,
           final_hwm: int, startup_s: float) -> str:
    records = load["records"]
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_kind[r["kind"]].append(r)
    outcomes = Counter(r["outcome"] for r in records)
    samples = load["samples"]
    rss = [kib for _, kib in samples]
    hwm = max(rss, default=0)
    lines = [
        f"Script: `benchmarks/bench_load.py`. Command: `python -m benchmarks.bench_load --clients {args.clients} "
        f"--seconds {args.seconds:g}{' --no-tests' if tests is None else ''}"
        + "".join(f" --compare-env {e}" for e in args.compare_env) + "`.",
        f"Machine: {machine()}. The app ran as `python app.py --port P --suspects DIR` (default limits: "
        "2 jobs at once, 1 per user, queue of 16) on 127.0.0.1; the 8 clients ran on the same 2 cores as the "
        "server, so the latencies include their own load.",
        "",
        f"### Load: {args.clients} concurrent `gradio_client` clients for {args.seconds:g} s",
        "",
        f"Server start-up until the API answered: {startup_s:.0f} s. {len(records)} requests in {load['wall_s']:.0f} s "
        f"(the last ones finish after the {args.seconds:g} s window): "
        + ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items())) + ".",
        "",
        "| request | n | ok | busy message | other error | wrong result | no answer | p50 (s) | p95 (s) | max (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, rs in sorted(by_kind.items()):
        c = Counter(r["outcome"] for r in rs)
        ok_times = [r["seconds"] for r in rs if r["outcome"] == "ok"]
        lines.append(f"| {kind} | {len(rs)} | {c['ok']} | {c['busy']} | {c['error']} | {c['wrong']} | "
                     f"{c['no answer']} | {_pct(ok_times, 0.5):.2f} | {_pct(ok_times, 0.95):.2f} | "
                     f"{max(ok_times, default=float('nan')):.2f} |")
    errors = Counter(r["message"] for r in records if r["outcome"] in ("error", "wrong", "no answer"))
    if errors:
        lines += ["", "Errors other than the busy message:", ""]
        lines += [f"- {n} x `{m}`" for m, n in errors.most_common(8)]
    busy = Counter(r["message"] for r in records if r["outcome"] == "busy")
    if busy:
        lines += ["", "Busy messages seen: " + "; ".join(f"{n} x \"{m}\"" for m, n in busy.most_common(3))]
    lines += [
        "",
        f"Server memory (RSS, sampled every 0.25 s): {idle_rss / 1024:.0f} MiB idle after start-up and enrolment; "
        f"peak {hwm / 1024:.0f} MiB during the run (kernel high-water mark at the end, after the fuzz and fault "
        f"phases: {final_hwm / 1024:.0f} MiB). Mean RSS per fifth of the run (MiB): "
        + ", ".join(f"{statistics.mean(part) / 1024:.0f}" for part in _fifths(rss)) + ".",
        "",
        "### Malformed inputs through the API (`/detect`, `/scan_video`)",
        "",
    ]
    rows = fuzz["rows"]
    fc = Counter((r["kind"], r["outcome"]) for r in rows)
    wrong = [r for r in rows if (r["expect"] == "error" and r["outcome"] == "result")
             or (r["expect"] == "ok" and r["outcome"] != "result") or r["outcome"] == "no answer"]
    lines.append(f"{len(rows)} files ({sum(r['kind'] == 'image' for r in rows)} images, "
                 f"{sum(r['kind'] == 'video' for r in rows)} videos): "
                 + ", ".join(f"{n} {k} {o}" for (k, o), n in sorted(fc.items()))
                 + f"; {len(wrong)} answered against expectation. Server alive afterwards: "
                 f"{'yes' if fuzz['alive'] else 'NO'}, still serving: {'yes' if fuzz['serving'] else 'NO'}.")
    lines += ["", "| file | expected | answer | message |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['kind']}: {r['name']} | {r['expect']} | {r['outcome']} | {r['message'].replace('|', '/')} |")
    lines += ["", "### Faults over HTTP", "", "| fault | app alive and serving afterwards | time (s) |", "|---|---|---|"]
    for name, (ok, secs) in faults.items():
        lines.append(f"| {name} | {'yes' if ok else 'NO'} | {secs:.1f} |")
    kinds = server.traceback_kinds()
    lines.append(f"\nTracebacks in the server log over the whole run: {server.tracebacks()}"
                 + (": " + "; ".join(f"{n} x `{k}`" for k, n in kinds.most_common(6)) if kinds else "") + ".")
    single_busy = sum(1 for r in records if r["outcome"] == "busy" and "x2" not in r["kind"])
    if single_busy:
        lines.append(f"\n{single_busy} busy message(s) answered a request whose client had no other job in flight "
                     "(its previous job had already returned its result).")
    if tests is not None:
        lines += ["", "### Fault and fuzz tests (`pytest tests/test_faults.py tests/test_fuzz.py`)", "",
                  f"{' '.join(tests['summary'])} ({tests['seconds']:.0f} s). Read-only and full disks are simulated "
                  "in-process (every write-type call under the folder fails with EROFS / ENOSPC), because the tests "
                  "run as root.", "", "| test | outcome | why (known gaps) |", "|---|---|---|"]
        for cls, name, outcome, reason in tests["rows"]:
            reason = re.sub(r"\s+", " ", reason).replace("|", "/")
            lines.append(f"| {cls}::{name} | {outcome} | {reason if outcome != 'passed' else ''} |")
    return "\n".join(lines)


def _summary_row(label: str, load: dict, idle_rss: int) -> str:
    records = load["records"]
    c = Counter(r["outcome"] for r in records)
    rss = [kib for _, kib in load["samples"]]
    ok = {k: [r["seconds"] for r in records if r["kind"] == k and r["outcome"] == "ok"]
          for k in ("detect", "scan_video")}
    return (f"| {label} | {len(records)} | {c['ok']} | {c['busy']} | {c['error'] + c['wrong'] + c['no answer']} | "
            f"{_pct(ok['detect'], 0.5):.1f} | {_pct(ok['scan_video'], 0.5):.1f} | {idle_rss / 1024:.0f} | "
            + " / ".join(f"{statistics.mean(p) / 1024:.0f}" for p in _fifths(rss)) + f" | {max(rss, default=0) / 1024:.0f} |")


def render_comparison(args, env: dict, first: tuple, second: tuple) -> str:
    setting = " ".join(f"{k}={v}" for k, v in env.items())
    lines = [f"### The load phase again with `{setting}` (a fresh server, same clients and duration)", "",
             "The two runs were one after the other on the same machine; other work on it may differ between them.",
             "", "| server | requests | ok | busy | other errors | detect p50 (s) | scan p50 (s) | idle RSS (MiB) | "
             "mean RSS per fifth of the run (MiB) | peak RSS (MiB) |", "|---|---|---|---|---|---|---|---|---|---|",
             _summary_row("as deployed", *first), _summary_row(setting, *second)]
    errors = Counter(r["message"] for r in second[0]["records"] if r["outcome"] in ("error", "wrong", "no answer"))
    if errors:
        lines += ["", f"Errors other than the busy message with `{setting}`:", ""]
        lines += [f"- {n} x `{m}`" for m, n in errors.most_common(5)]
    return "\n".join(lines)


def prepare(server: Server):
    """Wait for the server, enrol the load's watchlist person and warm the models up.

    Returns ``(client, seconds until the API answered, idle RSS in KiB)``.
    """
    t0 = time.time()
    client = server.wait_ready()
    startup_s = time.time() - t0
    _enrol(client)
    _serving(client)  # warm the models up before measuring
    return client, startup_s, server.rss_kib()[0]


def check_load_only(args) -> int:
    """The load phase alone; exit code 1 when any answer was not a result or the busy message."""
    work = Path(tempfile.mkdtemp(prefix="bench_load-"))
    server = Server(work, args.app_args)
    try:
        _, _, idle_rss = prepare(server)
        load = run_load(server, args.clients, args.seconds)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    records = load["records"]
    print(f"{args.clients} clients, {args.seconds:g} s: " + ", ".join(
        f"{n} {outcome}" for outcome, n in sorted(Counter(r["outcome"] for r in records).items())))
    print(_summary_row("this run", load, idle_rss))
    bad = Counter(r["message"] for r in records if r["outcome"] not in ("ok", "busy"))
    for message, n in bad.most_common():
        print(f"  {n} x {message}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-tests", action="store_true", help="skip running the fault and fuzz tests")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing BENCHMARKS.md")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (server log, records.json)")
    parser.add_argument("--compare-env", metavar="KEY=VALUE", action="append", default=[],
                        help="after everything else, repeat the load phase on a fresh server with this environment "
                             "(e.g. MALLOC_ARENA_MAX=2) and report both")
    parser.add_argument("--load-only", action="store_true",
                        help="run only the load phase and print its outcome and errors (writes nothing): "
                             "a quick check that nothing but the busy message comes back")
    parser.add_argument("app_args", nargs="*", help="extra arguments for app.py (after --)")
    args = parser.parse_args(argv)
    if args.load_only:
        sys.exit(check_load_only(args))
    work = Path(tempfile.mkdtemp(prefix="bench_load-"))
    server = Server(work, args.app_args)
    try:
        client, startup_s, idle_rss = prepare(server)
        print(f"server up in {startup_s:.0f} s, {idle_rss / 1024:.0f} MiB; load for {args.seconds:g} s ...", flush=True)
        load = run_load(server, args.clients, args.seconds)
        print(f"{len(load['records'])} requests; fuzz ...", flush=True)
        fuzz = run_fuzz(server, work)
        print("faults ...", flush=True)
        faults = run_faults(server)
        final_hwm = server.rss_kib()[1]
    finally:
        server.stop()
    tests = None
    if not args.no_tests:
        print("fault and fuzz tests ...", flush=True)
        tests = run_tests(work)
    markdown = "## Load, malformed inputs and faults\n\n" + render(args, load, fuzz, faults, tests, server, idle_rss,
                                                                     final_hwm, startup_s)
    if args.compare_env:
        env = dict(item.split("=", 1) for item in args.compare_env)
        print(f"load again with {env} ...", flush=True)
        other = Server(_mkdir(work / "compare"), args.app_args, env)
        try:
            _, _, other_idle = prepare(other)
            other_load = run_load(other, args.clients, args.seconds)
        finally:
            other.stop()
        markdown += "\n\n" + render_comparison(args, env, (load, idle_rss), (other_load, other_idle))
    (work / "section.md").write_text(markdown)
    (work / "records.json").write_text(json.dumps(load["records"], indent=1))
    if args.no_write:
        print(markdown)
    else:
        write_section("load", markdown)
        print(markdown)
    if args.keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

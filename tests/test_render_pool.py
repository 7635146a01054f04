"""Hostile templates stay bounded when rendered from threads (a server): every render
off the main thread runs in a worker process with the limits of a direct render, and
a worker that overruns or dies is replaced while the caller gets a refusal."""

from __future__ import annotations

import resource
import threading
import time

import pytest

from engine.errors import Refused
from engine.posts.render import render_text
from engine.posts.render_pool import RenderPool
from test_injection import CONTEXT, PAYLOADS, _assert_nothing_leaks


def _in_thread(fn, *args, **kw):
    """Run fn in a new (non-main) thread; return its result or raise what it raised."""
    out: dict = {}

    def run():
        try:
            out["value"] = fn(*args, **kw)
        except BaseException as e:  # noqa: BLE001 - handed back to the caller
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join(timeout=60)
    assert not t.is_alive(), "a render from a thread hung"
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_a_render_from_a_thread_gives_the_same_text_as_on_the_main_thread():
    source = "{{ hospital_name }} - {{ incident.id }}{% for i in range(3) %} {{ i }}{% endfor %}"
    here = render_text(source, CONTEXT, html=True, where="t")
    assert _in_thread(render_text, source, CONTEXT, html=True, where="t") == here
    assert here == "St Mary&#39;s Hospital - INC-20260314-001 0 1 2"


def test_the_injection_corpus_from_four_threads_at_once_is_refused_and_bounded():
    jobs = [(name, payload, html) for name, payload in PAYLOADS.items() for html in (False, True)]
    outcomes: dict = {}
    lock = threading.Lock()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def worker(share):
        for name, payload, html in share:
            started = time.monotonic()
            try:
                text = render_text(payload, CONTEXT, html=html, where="t")
                result = ("rendered", text)
            except Refused as e:
                result = ("refused", str(e))
            with lock:
                outcomes[(name, html)] = (*result, time.monotonic() - started)

    threads = [threading.Thread(target=worker, args=(jobs[k::4],)) for k in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a render hung the calling thread"
    assert len(outcomes) == len(jobs)
    for (name, html), (kind, text, _) in outcomes.items():
        assert kind == "refused", f"{name} (html={html}) was not refused: {text[:200]}"
        assert text.startswith("t: ") and text.endswith("nothing was recorded"), (name, text)
        _assert_nothing_leaks(text, PAYLOADS[name])
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
    assert grown < 256 * 2**20, f"the calling process grew by {grown >> 20} MB"
    # With two workers, 4 threads queue; no single render may keep a worker past its bound.
    assert time.monotonic() - started < len(jobs) * 2.5 / 2 + 30


def test_a_worker_that_overruns_is_killed_and_replaced():
    pool = RenderPool(size=1, timeout=0.3)
    try:
        slow = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
        started = time.monotonic()
        with pytest.raises(Refused, match="took longer than 0.3 s and was stopped"):
            pool.render(slow, {}, html=False, where="t")
        assert time.monotonic() - started < 5
        pool.timeout = 10  # the replacement's answer is not raced against a loaded machine
        assert pool.render("{{ 1 + 1 }}", {}, html=False, where="t") == "2"
    finally:
        pool.close()


def test_a_worker_that_dies_is_replaced_and_the_caller_is_refused():
    import os
    import signal

    pool = RenderPool(size=1, timeout=10)
    try:
        assert pool.render("ok", {}, html=False, where="t") == "ok"
        (worker,) = pool._idle
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.join(timeout=5)
        with pytest.raises(Refused, match="crashed the renderer"):
            pool.render("{{ 2 }}", {}, html=False, where="t")
        assert pool.render("{{ 3 }}", {}, html=False, where="t") == "3"
    finally:
        pool.close()


def test_refusals_from_a_worker_keep_their_reasons():
    with pytest.raises(Refused) as info:
        _in_thread(render_text, "Hello {{ clinic_name }}", {}, html=False, where="statement/x/en")
    assert str(info.value).startswith("statement/x/en: variable 'clinic_name' has no value")
    assert info.value.exit_code == 5

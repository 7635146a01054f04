"""Bounded rendering from any thread: a small pool of worker processes.

The limits of :mod:`engine.posts.render` (a SIGALRM timer, a lowered RLIMIT_AS) work only
on a process's main thread, and they are process-wide: in a threaded server a
hostile template would lose its time bound, and one render's memory cap would
apply to every thread. So off the main thread each render goes to a worker
process, where it runs on that process's main thread with every limit in force.
The parent waits at most ``TIME_LIMIT`` plus a margin; a worker that does not
answer by then (a loop in C that no signal interrupts) is killed and replaced, and
a worker that dies is replaced too. Either way the caller gets :class:`Refused`
and nothing is recorded; the server itself never hangs, grows or crashes.

Workers are started with ``forkserver`` (safe from a threaded parent) on first use
and reused; a context holds only plain JSON values, so it pickles.
"""

from __future__ import annotations

import atexit
import multiprocessing
import threading
from collections.abc import Callable

from ..errors import Refused

__all__ = ["RenderPool", "shared_pool"]

#: How long past the render's own time limit the parent waits before killing a worker.
MARGIN = 1.5
#: Address space a worker may use in all (its own soft per-render cap is lower).
WORKER_MEMORY = 1024 * 2**20


def _serve(conn, partials: str | None = None) -> None:  # pragma: no cover - runs in the worker process
    """A worker's main loop: render requests until the pipe closes."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > WORKER_MEMORY:
            resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))
    except (ImportError, ValueError, OSError):
        pass
    from . import render, sandbox  # warm: jinja2 and the sandbox load once per worker

    sandbox.use_partials(partials)

    render.environment(html=False), render.environment(html=True)
    conn.send(("ready",))  # the parent's time limit counts from here, not from start-up
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        source, context, html, where, withheld = request
        try:
            reply = ("ok", render.render_here(source, context, html=html, where=where, withheld=withheld))
        except Refused as e:
            reply = ("refused", e.message, e.reasons)
        except MemoryError:
            reply = ("refused", f"{where}: the template needs more memory than a render may use; "
                     "nothing was recorded", None)
        except BaseException as e:  # noqa: BLE001 - the parent words it; the worker lives on
            reply = ("refused", f"{where}: the template could not be rendered ({type(e).__name__}); "
                     "nothing was recorded", None)
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


#: How long a new worker may take to start and load the sandbox.
STARTUP = 60.0


class _Worker:
    def __init__(self, ctx) -> None:
        parent, child = ctx.Pipe()
        self.conn = parent
        from .sandbox import partials_folder

        self.process = ctx.Process(target=_serve, args=(child, partials_folder()), daemon=True,
                                   name="playbook-render")
        self.process.start()
        child.close()
        try:
            ready = parent.poll(STARTUP) and parent.recv() == ("ready",)
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.stop()
            raise Refused("the renderer could not be started; nothing was recorded")

    def stop(self) -> None:
        try:
            self.conn.close()
        finally:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(timeout=5)


class RenderPool:
    """Up to ``size`` worker processes rendering one template at a time each."""

    def __init__(self, size: int = 2, *, timeout: float | None = None, method: str | None = None) -> None:
        from .render import TIME_LIMIT

        if method is None:
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        self._ctx = multiprocessing.get_context(method)
        self.size = max(1, size)
        self.timeout = TIME_LIMIT + MARGIN if timeout is None else timeout
        self._idle: list[_Worker] = []
        self._started = 0
        self._cond = threading.Condition()
        self._closed = False

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("the render pool is closed")
                if self._idle:
                    return self._idle.pop()
                if self._started < self.size:
                    self._started += 1
                    break
                self._cond.wait()
        try:
            return _Worker(self._ctx)
        except BaseException:
            with self._cond:
                self._started -= 1
                self._cond.notify()
            raise

    def _release(self, worker: _Worker | None) -> None:
        with self._cond:
            if worker is None:
                self._started -= 1
            else:
                self._idle.append(worker)
            self._cond.notify()

    def render(self, source: str, context: dict, *, html: bool, where: str,
               withheld: frozenset[str] = frozenset()) -> str:
        """Render in a worker; Refused for anything a direct render would refuse, and for
        a worker that overran its time or died."""
        worker = self._acquire()
        healthy = False
        try:
            try:
                worker.conn.send((source, context, html, where, frozenset(withheld)))
                if not worker.conn.poll(self.timeout):
                    raise Refused(f"{where}: rendering took longer than {self.timeout:g} s and was "
                                  "stopped; nothing was recorded")
                reply = worker.conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                raise Refused(f"{where}: the template crashed the renderer, which was restarted; "
                              "nothing was recorded") from None
            healthy = True
        finally:
            if healthy:
                self._release(worker)
            else:
                worker.stop()
                self._release(None)
        if reply[0] == "ok":
            return reply[1]
        raise Refused(reply[1], reply[2])

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for worker in idle:
            worker.stop()


_shared: RenderPool | None = None
_shared_lock = threading.Lock()


def shared_pool(factory: Callable[[], RenderPool] = RenderPool) -> RenderPool:
    """The process's render pool, started on first use and closed at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = factory()
            atexit.register(_shared.close)
        return _shared

"""The background delivery thread of a Trac process (``delivery = inline``).

Thin Trac glue: :class:`DeliveryService` owns the thread, which runs
:class:`tracnotify.delivery.deliverer.Deliverer` passes.  The rules it keeps:

* One thread per environment *object*, started lazily (the first web
  request, or the first change this process records), named
  ``tracnotify-dlv`` for the operating system too (``ps -L``, ``top -H``).
* trac.ini is looked at before each pass: when the file changed, the pass
  uses a copy read afresh (the environment's own configuration is left alone,
  so that Trac still notices the change and reloads the environment).
  ``delivery = worker`` ends the thread; ``smtp_enabled = false`` sends
  nothing.
* ``env.shutdown()`` stops and joins the thread (Trac has no shutdown
  interface: the method is wrapped on the environment object).  Trac calls
  it on the old environment when trac.ini changed and it opens a new one;
  a thread whose environment left Trac's cache some other way, or was
  garbage collected, ends before its next pass.
* Trac's connection pool is shared by every environment of the process:
  while anything closes it (``env.shutdown()``, ``DatabaseManager.shutdown``,
  a reload), every delivery thread of the process is paused first, so none
  is inside a query on a connection that is being closed.
* A stop finishes the batch in flight and claims nothing more: the stopped
  thread holds no lease.  A short-lived process (``trac-admin``, a script)
  that recorded a change makes one last pass as it exits or shuts its
  environment down, so that its mail goes out now (``FINAL_PASS_SECONDS``
  at most before that pass stops claiming).
"""

import atexit
import os
import threading
import weakref
from typing import List, Optional

from trac.config import Configuration
from trac.core import Component, implements
from trac.db.api import DatabaseManager
from trac.util.text import exception_to_unicode
from trac.web.api import IRequestFilter

from tracnotify.config import NotifyConfig, load_config
from tracnotify.delivery.deliverer import Deliverer, PassReport
from tracnotify.threadname import set_native_name

THREAD_NAME = 'tracnotify-dlv'
#: how long an exiting process waits for its last pass before that pass
#: stops claiming (the batch in flight is always finished)
FINAL_PASS_SECONDS = 30.0
#: how long a stop waits for the batch in flight, at least
MIN_BATCH_WAIT = 30.0

_lock = threading.Lock()
_services: 'weakref.WeakSet[DeliveryService]' = weakref.WeakSet()
_pool_closing = 0          # > 0 while Trac's connection pool is being closed
_hooks_installed = False


class _Run:
    """The events of one run of a delivery thread."""

    def __init__(self, wake: threading.Event) -> None:
        self.wake = wake
        self.stop = threading.Event()       # no new pass
        self.hard_stop = threading.Event()  # the last pass claims no more
        self.final_pass = False             # make one last pass when stopped
        self.thread: Optional[threading.Thread] = None


class DeliveryService(Component):
    """The background delivery thread of one Trac environment object.

    Web processes start it with their first request (so that changes made
    by ``trac-admin`` or scripts, and retries, are delivered by the web
    server); other processes start it when they record a change.
    """

    implements(IRequestFilter)

    def __init__(self):
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._run: Optional[_Run] = None
        self._retired = False          # replaced by a reload: never again
        self._start_wanted = False     # asked for while the pool was closing
        self._recorded_here = False    # a change was recorded by this process
        self._config_errors_logged = False
        self._ini: Optional[Configuration] = None
        self._ini_lock = threading.Lock()
        self._cache_key: Optional[str] = None
        self._shutdown_hooked = False
        with _lock:
            _services.add(self)

    # IRequestFilter methods

    def pre_process_request(self, req, handler):
        if not self.running:
            try:
                if self.settings().delivery == 'inline':
                    self._ensure_thread()
            except Exception as e:
                self.log.error('tracnotify: cannot start delivery: %s',
                               exception_to_unicode(e))
        return handler

    def post_process_request(self, req, template, data, metadata):
        return template, data, metadata

    # Public API

    @property
    def running(self) -> bool:
        """Whether the delivery thread of this environment is alive."""
        run = self._run
        return run is not None and run.thread is not None \
            and run.thread.is_alive()

    def wake(self) -> None:
        """Ask for a delivery pass soon (called after each recorded change);
        never raises: it runs in ticket saves."""
        try:
            if self.settings().delivery != 'inline':
                return
            self._recorded_here = True
            self._ensure_thread()
            self._wake.set()
        except Exception as e:
            self.log.error('tracnotify: cannot wake delivery: %s',
                           exception_to_unicode(e, traceback=True))

    def stop(self, timeout: float = FINAL_PASS_SECONDS) -> None:
        """Stop the thread and wait for it: after its current pass, and
        after one last pass when this process recorded a change (which
        stops claiming after *timeout* seconds).  It may start again."""
        self._stop_thread(final_pass=self._recorded_here, grace=timeout)

    def settings(self) -> NotifyConfig:
        """``[notification]`` as trac.ini says now (read afresh when the
        file changed since the environment read it)."""
        return load_config(self.env, self._fresh_ini())

    # Thread ownership

    def _ensure_thread(self) -> None:
        if DatabaseManager(self.env).connection_uri.endswith(':memory:'):
            return  # one in-memory SQLite connection cannot be shared
        _install_process_hooks()
        with self._lock:
            if self._retired or self.running:
                return
            with _lock:
                if _pool_closing:
                    self._start_wanted = True
                    return
            self._start_wanted = False
            self._hook_env_shutdown()
            self._cache_key = _cache_key_of(self.env)
            run = _Run(self._wake)
            run.thread = threading.Thread(
                target=_serve, args=(weakref.ref(self), run),
                name=THREAD_NAME, daemon=True)
            self._run = run
            run.thread.start()

    def _runs_in(self, thread: threading.Thread) -> bool:
        """Whether *thread* is our delivery thread (which must not wait
        for itself)."""
        run = self._run
        return run is not None and run.thread is thread

    def _stop_thread(self, final_pass: bool, grace: float) -> bool:
        """Stop the thread (if any) and join it; returns whether one was
        running.  With *final_pass*, it makes one last pass, which stops
        claiming after *grace* seconds."""
        with self._lock:
            run = self._run
        if run is None or run.thread is None:
            return False
        if run.thread is threading.current_thread():
            run.stop.set()
            return False
        was_alive = run.thread.is_alive()
        run.final_pass = final_pass
        run.stop.set()
        run.wake.set()
        run.thread.join(grace if final_pass else 0)
        if run.thread.is_alive():
            run.hard_stop.set()
            run.thread.join(self._batch_wait())
        if run.thread.is_alive():
            self.log.error('tracnotify: the delivery thread did not stop '
                           'within %d s; going on without it',
                           self._batch_wait())
        with self._lock:
            if self._run is run:
                self._run = None
        return was_alive

    def _batch_wait(self) -> float:
        """How long the batch in flight may take (``outbox_lease_seconds``:
        a batch that takes longer has lost its lease anyway)."""
        try:
            return max(float(self.settings().lease_seconds), MIN_BATCH_WAIT)
        except Exception:
            return MIN_BATCH_WAIT

    def _retire(self) -> None:
        """This environment object is done with (shut down by a reload, or
        replaced): stop for good."""
        self._retired = True
        self._stop_thread(final_pass=False, grace=0)

    def _hook_env_shutdown(self) -> None:
        """Wrap ``env.shutdown`` so that it stops our thread first."""
        if self._shutdown_hooked:
            return
        self._shutdown_hooked = True
        env = self.env
        original = env.shutdown
        service = weakref.ref(self)

        def shutdown(tid=None):
            owner = service()
            if tid is None and owner is not None:
                owner._on_env_shutdown()
            return original(tid)

        shutdown.__doc__ = original.__doc__
        env.shutdown = shutdown

    def _on_env_shutdown(self) -> None:
        try:
            if _cache_key_of(self.env) is not None:
                # a web server's environment, shut down as Trac reloads it
                # (or for good): the new environment's thread takes over
                self._retire()
            else:
                self.stop()
        except Exception as e:
            self.log.error('tracnotify: stopping delivery: %s',
                           exception_to_unicode(e, traceback=True))

    def _thread_ended(self, run: _Run) -> None:
        with self._lock:
            if self._run is run:
                self._run = None   # ended by itself (delivery = worker...)

    # What the thread runs

    def _still_current(self) -> bool:
        """False once Trac's cache holds another object for our
        environment (a reload): the old environment must not deliver."""
        if self._retired:
            return False
        if self._cache_key is None:
            return True
        from trac.env import env_cache
        if env_cache.get(self._cache_key) is not self.env:
            self._retired = True
            return False
        return True

    def _fresh_ini(self) -> Optional[Configuration]:
        """None while the environment's configuration matches trac.ini,
        else a copy of trac.ini read afresh."""
        config = self.env.config
        if not _changed_on_disk(config):
            self._ini = None
            return None
        with self._ini_lock:
            try:
                if self._ini is None:
                    self._ini = Configuration(config.filename,
                                              {'envname': self.env.name})
                else:
                    self._ini.parse_if_needed()
            except Exception as e:   # a half-written file: keep going
                self.log.warning('tracnotify: cannot read %s: %s',
                                 config.filename, exception_to_unicode(e))
                self._ini = None
            return self._ini

    def _poll_interval(self, config: NotifyConfig, idle: int) -> float:
        return 0.2 if idle < 3 else float(config.poll_interval)

    def _pass(self, config: NotifyConfig, stop: threading.Event
              ) -> PassReport:
        try:
            if config.errors and not self._config_errors_logged:
                for error in config.errors:
                    self.log.warning('tracnotify: %s', error)
                self._config_errors_logged = True
            return Deliverer(self.env, config).run_once(stop=stop)
        except Exception as e:
            self.log.error('tracnotify: delivery pass failed: %s',
                           exception_to_unicode(e, traceback=True))
            return PassReport()


def _serve(ref: 'weakref.ref[DeliveryService]', run: _Run) -> None:
    """The delivery thread: passes until stopped.  It keeps only a weak
    reference to its service between passes, so an environment that is
    dropped without ``shutdown()`` does not live on because of it."""
    set_native_name(THREAD_NAME)
    idle = 0
    try:
        while not run.stop.is_set():
            service = ref()
            if service is None or not service._still_current():
                return
            config = service.settings()
            if config.delivery != 'inline':
                service.log.info('tracnotify: delivery = %s: the delivery '
                                 'thread ends', config.delivery)
                return
            interval = service._poll_interval(config, idle)
            del service, config
            woken = run.wake.wait(interval)
            run.wake.clear()
            service = ref()
            if run.stop.is_set() or service is None:
                break
            config = service.settings()
            if config.delivery != 'inline' or not service._still_current():
                continue
            report = service._pass(config, run.stop)
            del service, config
            # a change recorded in a still-open transaction becomes visible
            # only after its commit: look again shortly after a wake-up.
            idle = 0 if (woken or report.attempted or report.events) \
                else idle + 1
        service = ref()
        if run.final_pass and service is not None:
            # A process that is exiting (trac-admin, a script) may have
            # committed its change after our last look: one more pass, so
            # that its mail goes out now rather than at the next poll of
            # some other process.
            config = service.settings()
            if config.delivery == 'inline':
                service._pass(config, run.hard_stop)
    except Exception as e:   # a bug of ours: say so, the next wake restarts
        service = ref()
        if service is not None:
            service.log.error('tracnotify: the delivery thread failed: %s',
                              exception_to_unicode(e, traceback=True))
    finally:
        service = ref()
        if service is not None:
            service._thread_ended(run)


def _cache_key_of(env) -> Optional[str]:
    """The key of *env* in Trac's environment cache (web servers), or None
    for an environment opened on its own (scripts, ``trac-admin``)."""
    from trac.env import env_cache
    for key, cached in list(env_cache.items()):
        if cached is env:
            return key
    return None


def _changed_on_disk(config) -> bool:
    """Whether trac.ini (or a file it inherits) changed since *config* was
    read."""
    filename = getattr(config, 'filename', None)
    if not filename:
        return False
    try:
        mtime = os.path.getmtime(filename)
    except OSError:
        return False
    if mtime != getattr(config, '_lastmtime', mtime):
        return True
    return any(_changed_on_disk(parent)
               for parent in getattr(config, 'parents', ()))


# The process: Trac's connection pool and the interpreter's exit -----------

def _install_process_hooks() -> None:
    """Once per process: pause every delivery thread while Trac's shared
    connection pool is closed, and stop them all at interpreter exit."""
    global _hooks_installed
    with _lock:
        if _hooks_installed:
            return
        _hooks_installed = True
    from trac.db import pool
    backend = getattr(pool, '_backend', None)
    if backend is not None:
        original = backend.shutdown

        def shutdown(tid=None):
            if tid is not None:       # idle connections of one thread
                return original(tid)
            paused = _pause_all()
            try:
                return original(tid)
            finally:
                _resume_all(paused)

        backend.shutdown = shutdown
    atexit.register(_stop_all)


def _pause_all() -> List[DeliveryService]:
    """Stop every delivery thread after its batch in flight and keep new
    ones from starting; returns those that ran."""
    global _pool_closing
    with _lock:
        _pool_closing += 1
        services = list(_services)
    current = threading.current_thread()
    return [s for s in services if not s._runs_in(current)
            and s._stop_thread(final_pass=False, grace=0)]


def _resume_all(paused: List[DeliveryService]) -> None:
    global _pool_closing
    with _lock:
        _pool_closing -= 1
        if _pool_closing:
            return
        services = list(_services)
    for service in services:
        if service in paused or service._start_wanted:
            try:
                service._ensure_thread()
            except Exception as e:
                service.log.error('tracnotify: cannot restart delivery: %s',
                                  exception_to_unicode(e))


def _stop_all() -> None:
    """At interpreter exit: every thread stops (those of processes that
    recorded a change after a last pass), so none dies inside a query or
    with a lease."""
    with _lock:
        services = list(_services)
    for service in services:
        service.stop()

"""Kiln Python kernel: one code context per process, driven by the agent (see PROTOCOL.md).

fd 3 brings `run` and `save` requests from the agent and fd 4 takes events back, one JSON
object per line; fd 1 and fd 2 are the user's stdout and stderr, which the agent forwards as
they come. A state file given as the only argument (written by `save` for a snapshot) is loaded
into the context before it reports `ready`.

Cells run with notebook semantics: a final expression's value is the main result, display()
adds more results, open matplotlib figures come out as PNGs when the cell ends (or at
plt.show()), top-level `await` works, and SIGINT interrupts the running cell without losing
the context's state. Heavy modules (asyncio, traceback, matplotlib...) are imported only when
a cell needs them (dill only to save or restore state): an idle kernel waits in every pooled
sandbox.
"""

import os

os.environ["MPLBACKEND"] = "Agg"  # before anything can import matplotlib

import _thread
import ast
import binascii
import builtins
import io
import json
import linecache
import signal
import sys
import types

REQUESTS_FD = 3
EVENTS_FD = 4
KERNEL_FILE = __file__
CELL_PREFIX = "<cell-"
CO_COROUTINE = 0x80  # inspect.CO_COROUTINE: code compiled from a cell with top-level await
COMPILE_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT

# The agent forwards a result in a frame header of at most 1 MiB, so a bigger representation
# could never reach the client: it is left out (with a note on stderr) instead of being sent.
REPRESENTATION_MAX = 1 << 20
ERROR_VALUE_MAX = 16 << 10
ERROR_TRACEBACK_MAX = 32 << 10
REASON_MAX = 1 << 10  # characters of why one variable could not be saved or restored

REPR_METHODS = (
    ("html", "_repr_html_"),
    ("markdown", "_repr_markdown_"),
    ("svg", "_repr_svg_"),
    ("png", "_repr_png_"),
    ("jpeg", "_repr_jpeg_"),
    ("json", "_repr_json_"),
)
MIME_KEYS = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "application/json": "json",
}


class WriteThrough(io.TextIOWrapper):
    """A text stream on fd that hands every write to the OS at once, so output streams live."""

    def __init__(self, fd):
        raw = io.FileIO(fd, "w", closefd=False)
        super().__init__(io.BufferedWriter(raw), encoding="utf-8", errors="backslashreplace")

    def write(self, text):
        count = super().write(text)
        self.flush()
        return count


class PyplotHook:
    """Import hook that points matplotlib.pyplot.show at `show` when pyplot gets imported.

    With the Agg backend plt.show() does nothing, so code written for notebooks that calls it
    after each plot would keep drawing into one figure; this makes it emit and close them."""

    def __init__(self, show):
        self.show = show

    def find_spec(self, name, path, target=None):
        if name != "matplotlib.pyplot":
            return None
        sys.meta_path.remove(self)  # once only, and the finders asked below must not see it
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None:
            exec_module = spec.loader.exec_module  # path finders make one loader per module

            def exec_and_patch(module):
                exec_module(module)

                # A function, not the bound method: switch_backend() sets show.__signature__.
                def show(*args, **kwargs):
                    self.show()

                module.show = show

            spec.loader.exec_module = exec_and_patch
        return spec


def safe_repr(obj):
    try:
        return repr(obj)
    except Exception:
        return object.__repr__(obj)


def safe_str(exc):
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"


def call_repr_method(obj, name):
    """obj.name() for an IPython-style repr method: None if absent or failing."""
    try:
        method = getattr(obj, name, None)
        return method() if callable(method) else None
    except Exception:
        return None


def coerce(key, data):
    """data as the protocol wants it under `key` (png/jpeg base64, json serializable), or None."""
    if isinstance(data, tuple) and len(data) == 2:  # IPython allows (data, metadata)
        data = data[0]
    if key in ("png", "jpeg") and isinstance(data, (bytes, bytearray)):
        return binascii.b2a_base64(data, newline=False).decode("ascii")
    if key == "json":
        try:
            json.dumps(data, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            return None
        return data
    return data if isinstance(data, str) else None


def representations(obj):
    """(key, data) pairs from obj's _repr_mimebundle_ and then its _repr_*_ methods."""
    bundle = call_repr_method(obj, "_repr_mimebundle_")
    if isinstance(bundle, tuple) and len(bundle) == 2:
        bundle = bundle[0]
    if isinstance(bundle, dict):
        for mime, key in MIME_KEYS.items():
            if mime in bundle:
                yield key, bundle[mime]
    for key, name in REPR_METHODS:
        yield key, call_repr_method(obj, name)


def mime_bundle(obj):
    """{text, html?, markdown?, svg?, png?, jpeg?, json?} for obj; text defaults to repr()."""
    bundle = {}
    if not isinstance(obj, type):  # on a class the repr methods are unbound functions
        for key, data in representations(obj):
            if key not in bundle and data is not None:
                value = coerce(key, data)
                if value is not None:
                    bundle[key] = value
    if "text" not in bundle:
        bundle["text"] = safe_repr(obj)
    return bundle


def hide_kernel_frames(report, seen=None):
    """Drop the kernel's own frames from a TracebackException and the exceptions it chains."""
    import traceback

    seen = set() if seen is None else seen
    if report is None or id(report) in seen:
        return
    seen.add(id(report))
    kept = [frame for frame in report.stack if frame.filename != KERNEL_FILE]
    report.stack = traceback.StackSummary.from_list(kept)
    for chained in (report.__cause__, report.__context__, *(report.exceptions or ())):
        hide_kernel_frames(chained, seen)


def describe(exc):
    """The `error` object for an exception raised by a cell."""
    import traceback

    tb = exc.__traceback__
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith(CELL_PREFIX):
        tb = tb.tb_next  # the kernel's (and asyncio's) frames above the cell
    report = traceback.TracebackException(type(exc), exc, tb)
    hide_kernel_frames(report)
    text = "".join(report.format())
    if len(text) > ERROR_TRACEBACK_MAX:  # the end is where the error is
        text = "[truncated]\n" + text[-ERROR_TRACEBACK_MAX:]
    value = safe_str(exc)
    if len(value) > ERROR_VALUE_MAX:
        value = value[:ERROR_VALUE_MAX] + "\n[truncated]"
    return {"name": type(exc).__name__, "value": value, "traceback": text}


def reason(exc):
    text = f"{type(exc).__name__}: {safe_str(exc)}"
    return text if len(text) <= REASON_MAX else text[:REASON_MAX] + "..."


class Discard:
    """A file that forgets what is written to it: pickling into it only tells whether it works."""

    def write(self, data):
        return len(data)


class Kernel:
    """The context: the user's namespace, and the machinery that runs cells in it."""

    def __init__(self):
        self.write_lock = _thread.allocate_lock()  # user threads may display() too
        self.run_id = None
        self.cells = 0
        self.executing = False  # SIGINT raises KeyboardInterrupt only while a cell runs
        self.event_loop = None  # asyncio loop for top-level await, kept across cells
        self.restore_note = None  # what a restore could not bring back, told by the first cell
        self.result_room = float("inf")  # bytes of results the running cell may still emit
        self.results_dropped = False
        # User code gets a fresh __main__ (so pickle finds classes defined in cells); keep the
        # kernel's own module object alive.
        self.kernel_module = sys.modules["__main__"]
        main = types.ModuleType("__main__")
        main.__builtins__ = builtins
        sys.modules["__main__"] = main
        self.namespace = main.__dict__
        self.stdout = sys.stdout = WriteThrough(1)
        self.stderr = sys.stderr = WriteThrough(2)
        builtins.display = self.display
        sys.meta_path.insert(0, PyplotHook(self.emit_figures))
        signal.signal(signal.SIGINT, self._on_sigint)

    def serve(self, state_file=None):
        requests = os.fdopen(REQUESTS_FD, "rb")
        ready = {"type": "ready"}
        if state_file is not None:
            ready.update(self._restore(state_file))
        self._emit(ready)
        for line in requests:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if message.get("type") == "run":
                room = message.get("maxResultBytes")
                self.result_room = room if isinstance(room, int) and not isinstance(room, bool) else float("inf")
                self.results_dropped = False
                self._run(message.get("id"), message.get("code") or "")
            elif message.get("type") == "save":
                self._save(message.get("id"), message.get("path"))

    def display(self, *objs):
        """Show objects as results of the running cell, like IPython's display()."""
        for obj in objs:
            if self.result_room <= 0:  # over the cell's result budget: not even rendered
                self.results_dropped = True
                return
            self._emit_result(mime_bundle(obj), main=False)

    def emit_figures(self):
        """Emit every open matplotlib figure as a PNG result and close them all.

        Runs after each cell, and in place of plt.show()."""
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is None:
            return
        try:
            for number in pyplot.get_fignums():
                figure = pyplot.figure(number)
                png = io.BytesIO()
                try:
                    figure.savefig(png, format="png", bbox_inches="tight")
                except Exception as exc:
                    sys.stderr.write(f"kiln: could not render figure {number}: {exc!r}\n")
                    continue
                bundle = {"text": safe_repr(figure), "png": coerce("png", png.getvalue())}
                self._emit_result(bundle, main=False)
        finally:
            pyplot.close("all")

    def _save_state(self, path):
        """Write the user's variables to path; {saved, failed} by name.

        Each variable is first pickled on its own, so one that cannot be (a socket, a
        generator...) is reported and left out; the rest are then pickled together, so objects
        shared between variables, and classes defined in cells, stay one object when restored.
        Modules are recorded by name, to be imported again."""
        import pickle

        import dill

        saved, failed, imports, values = [], [], {}, {}
        for name, value in list(self.namespace.items()):
            if not isinstance(name, str) or name.startswith("_") or self._is_own(value):
                continue
            if isinstance(value, types.ModuleType):
                if sys.modules.get(getattr(value, "__name__", None)) is value:
                    imports[name] = value.__name__
                    saved.append(name)
                else:
                    failed.append({"name": name, "reason": "a module that cannot be imported by name"})
                continue
            try:
                dill.dump(value, Discard(), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                failed.append({"name": name, "reason": reason(exc)})
            else:
                values[name] = value
                saved.append(name)
        with open(path, "wb") as f:
            # Plain data first: readable even when the values cannot be loaded.
            pickle.dump({"imports": imports, "values": list(values), "failed": failed}, f)
            dill.dump(values, f, protocol=pickle.HIGHEST_PROTOCOL)
        return {"saved": saved, "failed": failed}

    def _is_own(self, value):
        """A method of the kernel (display): it cannot be pickled, and a new kernel has its own."""
        return isinstance(value, types.MethodType) and value.__self__ is self

    def _save(self, save_id, path):
        try:
            report = self._save_state(path)
        except Exception as exc:
            report = {"saved": [], "failed": [], "error": reason(exc)}
        self._emit({"type": "saved", "id": save_id, **report})

    def _restore(self, path):
        """Load a file written by _save_state() into the namespace: {restored, failed[, error]}.

        What does not come back is also told on the stderr of the first cell."""
        report = {"restored": [], "failed": []}
        try:
            self._load_state(path, report["restored"], report["failed"])
        except Exception as exc:
            report["error"] = reason(exc)
        problems = [f"  {item['name']}: {item['reason']}\n" for item in report["failed"]]
        if "error" in report:
            problems.append(f"  {report['error']}\n")
        if problems:
            heading = "kiln: not everything was restored from the saved state:\n"
            self.restore_note = heading + "".join(problems)
        return report

    def _load_state(self, path, restored, failed):
        """Modules first, then values."""
        import importlib
        import pickle

        with open(path, "rb") as f:
            state = pickle.load(f)
            for name, module in state["imports"].items():
                try:
                    self.namespace[name] = importlib.import_module(module)
                    restored.append(name)
                except Exception as exc:
                    failed.append({"name": name, "reason": f"could not be imported: {reason(exc)}"})
            try:
                import dill

                values = dill.load(f)
            except Exception as exc:
                problem = f"could not be loaded: {reason(exc)}"
                failed.extend({"name": name, "reason": problem} for name in state["values"])
            else:
                self.namespace.update(values)
                restored.extend(values)
        for item in state["failed"]:
            failed.append({"name": item["name"], "reason": f"could not be saved: {item['reason']}"})

    def _on_sigint(self, signum, frame):
        if self.executing:
            raise KeyboardInterrupt

    def _run(self, run_id, code):
        self.run_id = run_id
        self.cells += 1
        if self.restore_note is not None:
            self.stderr.write(self.restore_note)
            self.restore_note = None
        filename = f"{CELL_PREFIX}{self.cells}>"
        # Tracebacks read cell lines from linecache; mtime None keeps checkcache() off them.
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        try:
            failure = self._run_cell(code, filename)
        except KeyboardInterrupt as late:  # landed between the cell's end and `executing = False`
            failure = late
        error = describe(failure) if failure is not None else None
        for stream in (sys.stdout, sys.stderr, self.stdout, self.stderr):
            try:
                stream.flush()
            except Exception:  # the user may have replaced or closed sys.stdout
                pass
        self._emit({"type": "done", "id": run_id, "error": error, "truncated": self.results_dropped})

    def _run_cell(self, code, filename):
        """Run a cell and emit its results; the exception it raised, or None."""
        self.executing = True
        try:
            try:
                tree = ast.parse(code, filename)
                last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
                self._eval(compile(tree, filename, "exec", flags=COMPILE_FLAGS, dont_inherit=True))
                if last is not None:
                    expression = ast.Expression(last.value)
                    value = self._eval(
                        compile(expression, filename, "eval", flags=COMPILE_FLAGS, dont_inherit=True)
                    )
                    if value is not None:
                        self._emit_result(mime_bundle(value), main=True)
            finally:
                self.emit_figures()  # also when the cell failed
        except BaseException as exc:  # SystemExit and KeyboardInterrupt are cell errors too
            return exc
        finally:
            self.executing = False
        return None

    def _eval(self, code):
        result = eval(code, self.namespace)
        if code.co_flags & CO_COROUTINE:
            result = self._await(result)
        return result

    def _await(self, coroutine):
        import asyncio

        if self.event_loop is None:
            self.event_loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.event_loop)  # asyncio.run() in an earlier cell unsets it
        task = self.event_loop.create_task(coroutine)
        try:
            return self.event_loop.run_until_complete(task)
        finally:
            task.cancel()  # a no-op unless the cell was interrupted while awaiting

    def _emit_result(self, bundle, main):
        for key, value in list(bundle.items()):
            size = len(value) if isinstance(value, str) else len(json.dumps(value))
            if size > REPRESENTATION_MAX and key != "text":
                del bundle[key]
                sys.stderr.write(f"kiln: {key} output left out: {size} bytes is too large\n")
        if len(bundle["text"]) > REPRESENTATION_MAX:
            bundle["text"] = bundle["text"][:REPRESENTATION_MAX] + "\n[truncated]"
        bundle["isMainResult"] = main
        line = json.dumps({"type": "result", "id": self.run_id, "result": bundle})
        if len(line) > self.result_room:
            self.result_room = 0
            self.results_dropped = True
            return
        self.result_room -= len(line)
        self._emit_line(line)

    def _emit(self, message):
        self._emit_line(json.dumps(message))

    def _emit_line(self, line):
        data = memoryview((line + "\n").encode())
        # A line cut short by KeyboardInterrupt would garble the channel: hold SIGINT meanwhile.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            with self.write_lock:
                while data:
                    data = data[os.write(EVENTS_FD, data) :]
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def main():
    for fd in (REQUESTS_FD, EVENTS_FD):
        os.set_inheritable(fd, False)  # user subprocesses must not get the control pipes
    state_file = sys.argv[1] if len(sys.argv) > 1 else None
    del sys.argv[1:]  # cells see a plain command line
    sys.path.insert(0, "")  # like a notebook: modules in the working directory are importable
    Kernel().serve(state_file)


if __name__ == "__main__":
    main()

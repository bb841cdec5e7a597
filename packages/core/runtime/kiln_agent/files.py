"""`fs_*`: file operations, streamed in bounded frames."""

import errno
import os
import stat
import time

from .limits import ENTRY_BATCH, FILE_CHUNK
from .request import Request
from .util import describe_os_error, encoded_size, errno_name


class FileWrite(Request):
    """`fs_write`: chunks go to a temp file beside the target, renamed over it at the end."""

    def __init__(self, conn, rid, path, mode):
        super().__init__(conn, rid)
        self.path, self.mode = path, mode
        self.size = 0
        self.fd = None
        self.temp = None
        self.failed = False
        try:
            self._open()
        except OSError as exc:
            self._fail(exc)

    def chunk(self, offset, data, final):
        if not self.failed:
            try:
                if offset != self.size:
                    raise OSError(errno.EINVAL, f"expected offset {self.size}, got {offset}")
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view) :]
                self.size += len(data)
                if final:
                    self._commit()
            except OSError as exc:
                self._fail(exc)
        if final:
            self.retire()

    def cancel(self):
        self._discard()

    def _open(self):
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), self.path)
        if self.mode is None and st is not None and stat.S_ISREG(st.st_mode):
            self.mode = stat.S_IMODE(st.st_mode)  # overwriting keeps the file's mode
        parent, name = os.path.split(self.path)
        os.makedirs(parent, exist_ok=True)
        self.temp = os.path.join(parent, f".{name}.{os.urandom(4).hex()}.kiln-tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        self.fd = os.open(self.temp, flags, 0o666)

    def _commit(self):
        os.close(self.fd)
        self.fd = None
        if self.mode is not None:
            os.chmod(self.temp, self.mode)
        os.replace(self.temp, self.path)
        self.temp = None
        self.send("ok", size=self.size)

    def _fail(self, exc):
        """Answer now; later chunks of this write are ignored (the final one retires it)."""
        self.failed = True
        self._discard()
        self.send("error", code=errno_name(exc), message=describe_os_error(exc))

    def _discard(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.temp is not None:
            try:
                os.unlink(self.temp)
            except OSError:
                pass
            self.temp = None


class FileRead(Request):
    """`fs_read`: `data` frames of FILE_CHUNK bytes, produced as fast as the client takes them.

    With a `limit`, never more than that many bytes: past it the read ends with `ok {truncated}`
    (`truncate`) or `error EFBIG`, so a pseudo-file that never ends (/proc, /sys) stops."""

    def __init__(self, conn, rid, fd, limit=None, truncate=False):
        super().__init__(conn, rid)
        self.fd = fd
        self.size = 0
        self.limit, self.truncate = limit, truncate
        if limit is not None and not truncate:
            size = os.fstat(fd).st_size
            if size > limit:
                self.cancel()
                raise OSError(errno.EFBIG, f"the file is {size} bytes, over the limit of {limit} bytes (maxBytes)")

    def resume(self):
        while self.fd is not None:
            if self.conn.congested:
                self.conn.wait_drain(self)
                return
            try:
                # Whole chunks, even near the limit: some pseudo-files (pagemap) only take
                # reads of a multiple of their record size.
                data = os.read(self.fd, FILE_CHUNK)
            except OSError as exc:
                self.cancel()
                self.send("error", code=errno_name(exc), message=describe_os_error(exc))
                self.retire()
                return
            if not data:
                self.cancel()
                self.send("ok", size=self.size, truncated=False)
                self.retire()
                return
            if self.limit is not None and self.size + len(data) > self.limit:
                self._over_limit(data[: self.limit - self.size])
                return
            self.size += len(data)
            self.send("data", data)

    def _over_limit(self, last):
        self.cancel()
        if self.truncate:
            if last:
                self.size += len(last)
                self.send("data", last)
            self.send("ok", size=self.size, truncated=True)
        else:
            message = f"the file holds more than {self.limit} bytes, the limit (maxBytes)"
            self.send("error", code="EFBIG", message=message)
        self.retire()

    def cancel(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class EntryStream(Request):
    """`fs_list` / `fs_walk`: entries in `entries` frames of ENTRY_BATCH bytes, the rest in `ok`."""

    def __init__(self, conn, rid, entries):
        super().__init__(conn, rid)
        self.entries = entries  # iterator of FileEntry dicts

    def resume(self):
        while self.entries is not None:
            if self.conn.congested:
                self.conn.wait_drain(self)
                return
            batch, size = [], 0
            for entry in self.entries:
                batch.append(entry)
                size += encoded_size(entry)
                if size >= ENTRY_BATCH:
                    self.send("entries", entries=batch)
                    break
            else:
                self.entries = None
                self.send("ok", entries=batch)
                self.retire()

    def cancel(self):
        self.entries = None



def iso_time(ns):
    ms = ns // 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def file_entry(path, st):
    mode = st.st_mode
    if stat.S_ISREG(mode):
        kind = "file"
    elif stat.S_ISDIR(mode):
        kind = "directory"
    elif stat.S_ISLNK(mode):
        kind = "symlink"
    else:
        kind = "other"
    shown = path.rstrip("/") or "/"
    return {
        "name": os.path.basename(shown) or shown,
        "path": shown,
        "type": kind,
        "size": st.st_size,
        "mode": stat.S_IMODE(mode),
        "modifiedAt": iso_time(st.st_mtime_ns),
    }


def scan_sorted(path):
    """[(child path, lstat)] for path's entries, sorted by name; entries that vanish are skipped."""
    with os.scandir(path) as entries:
        entries = sorted(entries, key=lambda entry: entry.name)
    children = []
    for entry in entries:
        try:
            children.append((entry.path, entry.stat(follow_symlinks=False)))
        except FileNotFoundError:
            pass
    return children


def list_entries(children):
    return (file_entry(path, st) for path, st in children)


def walk_entries(children):
    """FileEntries for everything below a directory, depth first, never following links."""
    stack = [iter(children)]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        path, st = item
        yield file_entry(path, st)
        if stat.S_ISDIR(st.st_mode):
            try:
                stack.append(iter(scan_sorted(path)))
            except OSError:
                pass  # an unreadable directory is listed, its contents are not


def open_regular(path):
    # O_NONBLOCK: opening a FIFO must not hang the agent.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
        raise OSError(code, "not a regular file" if code == errno.EINVAL else os.strerror(code), path)
    return fd


def remove_path(path, recursive):
    st = os.lstat(path)  # a symlink is removed itself, never followed
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
    elif recursive:
        import shutil

        shutil.rmtree(path)
    else:
        os.rmdir(path)

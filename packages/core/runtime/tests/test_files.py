"""`fs_*` requests."""

import os
import unittest

from harness import AgentTest, agent, start_shared, stop_shared

FILE_CHUNK = 256 << 10  # the agent's fs_read frame size


def setUpModule():
    start_shared()


def tearDownModule():
    stop_shared()


class FilesTest(AgentTest):
    def write(self, path, data, chunk=1 << 20, **fields):
        """fs_write in chunks of `chunk` bytes; the final reply."""
        pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
        rid, offset = None, 0
        for index, piece in enumerate(pieces):
            final = index == len(pieces) - 1
            rid = self.client.send(
                "fs_write", piece, request_id=rid, path=path, offset=offset, final=final, **fields
            )  # every chunk carries the id of the first
            offset += len(piece)
        return self.client.collect(rid)[-1][0]

    def read(self, path):
        frames = self.client.call("fs_read", path=path)
        return b"".join(body for header, body in frames if header["type"] == "data"), frames

    def test_binary_round_trip(self):
        data = bytes(range(256)) * 6000  # 1.5 MB, every byte value
        path = self.path("files", "deep", "er", "blob.bin")  # parents are created
        reply = self.write(path, data, chunk=400000)
        self.assertEqual((reply["type"], reply["size"]), ("ok", len(data)))
        read, frames = self.read(path)
        self.assertEqual(read, data)
        self.assertEqual(frames[-1][0], {"type": "ok", "id": frames[-1][0]["id"], "size": len(data), "truncated": False})
        self.assertGreater(len(frames), 5)  # streamed in 256 KiB chunks
        self.assertEqual([n for n in os.listdir(os.path.dirname(path))], ["blob.bin"])  # no temp left

    def test_empty_file_and_mode(self):
        path = self.path("files", "script.sh")
        self.assertEqual(self.write(path, b"", mode=0o751)["type"], "ok")
        entry = self.client.final("fs_stat", path=path)["entry"]
        self.assertEqual((entry["type"], entry["size"], entry["mode"]), ("file", 0, 0o751))
        self.assertEqual(self.write(path, b"echo")["type"], "ok")  # overwriting keeps the mode
        self.assertEqual(self.client.final("fs_stat", path=path)["entry"]["mode"], 0o751)

    def test_write_errors(self):
        os.makedirs(self.path("files", "adir"), exist_ok=True)
        reply = self.write(self.path("files", "adir"), b"x")
        self.assertEqual((reply["type"], reply["code"]), ("error", "EISDIR"))
        rid = self.client.send("fs_write", b"x", path=self.path("files", "f"), offset=5, final=True)
        reply = self.client.collect(rid)[-1][0]
        self.assertEqual((reply["type"], reply["code"]), ("error", "EINVAL"))

    def test_read_errors(self):
        reply = self.client.final("fs_read", path=self.path("missing"))
        self.assertEqual((reply["type"], reply["code"]), ("error", "ENOENT"))
        reply = self.client.final("fs_read", path=agent().dir)
        self.assertEqual((reply["type"], reply["code"]), ("error", "EISDIR"))
        for kind in ("fs_stat", "fs_list", "fs_walk", "fs_remove"):
            reply = self.client.final(kind, path=self.path("missing"))
            self.assertEqual((kind, reply["type"], reply["code"]), (kind, "error", "ENOENT"))

    def test_read_limit(self):
        data = os.urandom(3 * FILE_CHUNK + 5)
        with open(self.path("limited.bin"), "wb") as f:
            f.write(data)
        reply = self.client.final("fs_read", path=self.path("limited.bin"), maxBytes=1000)
        self.assertEqual((reply["type"], reply["code"]), ("error", "EFBIG"))
        self.assertIn(f"{len(data)} bytes, over the limit of 1000", reply["message"])
        for limit in (0, 1000, FILE_CHUNK, 2 * FILE_CHUNK + 1):
            frames = self.client.call("fs_read", path=self.path("limited.bin"), maxBytes=limit, truncate=True)
            body = b"".join(b for h, b in frames if h["type"] == "data")
            self.assertEqual(body, data[:limit])
            self.assertEqual((frames[-1][0]["size"], frames[-1][0]["truncated"]), (limit, True))
        frames = self.client.call("fs_read", path=self.path("limited.bin"), maxBytes=len(data), truncate=True)
        self.assertEqual(frames[-1][0]["truncated"], False)
        reply = self.client.final("fs_read", path=self.path("limited.bin"), maxBytes=len(data))
        self.assertEqual((reply["type"], reply["size"]), ("ok", len(data)))

    def test_endless_pseudo_file_stops_at_the_limit(self):
        # /proc/<pid>/pagemap has st_size 0 and reads for gigabytes.
        path = f"/proc/{agent().proc.pid}/pagemap"
        frames = self.client.call("fs_read", path=path, maxBytes=3 << 20, truncate=True)
        self.assertEqual(sum(len(b) for h, b in frames if h["type"] == "data"), 3 << 20)
        self.assertEqual(frames[-1][0]["truncated"], True)
        reply = self.client.final("fs_read", path=path, maxBytes=1 << 20)
        self.assertEqual((reply["type"], reply["code"]), ("error", "EFBIG"))

    def test_stat_list_walk(self):
        root = self.path("tree")
        self.assertEqual(self.client.final("fs_mkdir", path=os.path.join(root, "b", "c"))["type"], "ok")
        self.assertEqual(self.client.final("fs_mkdir", path=os.path.join(root, "b"))["type"], "ok")
        self.write(os.path.join(root, "a.txt"), b"12345")
        self.write(os.path.join(root, "b", "c", "d.txt"), b"")
        os.symlink(os.path.join(root, "b"), os.path.join(root, "link"))

        entry = self.client.final("fs_stat", path=os.path.join(root, "a.txt"))["entry"]
        self.assertEqual(
            {k: entry[k] for k in ("name", "path", "type", "size")},
            {"name": "a.txt", "path": os.path.join(root, "a.txt"), "type": "file", "size": 5},
        )
        self.assertRegex(entry["modifiedAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        link = self.client.final("fs_stat", path=os.path.join(root, "link"))["entry"]
        self.assertEqual(link["type"], "symlink")

        entries = self.client.final("fs_list", path=root)["entries"]
        self.assertEqual(
            [(e["name"], e["type"]) for e in entries],
            [("a.txt", "file"), ("b", "directory"), ("link", "symlink")],
        )
        walked = self.client.final("fs_walk", path=root)["entries"]
        self.assertEqual(
            [e["path"][len(root) :] for e in walked],
            ["/a.txt", "/b", "/b/c", "/b/c/d.txt", "/link"],  # the link is not followed
        )

    def test_large_listing_comes_in_batches(self):
        root = self.path("many")
        os.makedirs(root)
        names = [f"file-with-a-rather-long-name-{i:05d}" for i in range(3000)]
        for name in names:
            open(os.path.join(root, name), "w").close()
        frames = self.client.call("fs_walk", path=root)
        self.assertGreater(len(frames), 1)
        self.assertEqual({header["type"] for header, _ in frames[:-1]}, {"entries"})
        entries = [e for header, _ in frames for e in header["entries"]]
        self.assertEqual([e["name"] for e in entries], names)

    def test_mkdir_over_file(self):
        self.write(self.path("files", "plain"), b"x")
        reply = self.client.final("fs_mkdir", path=self.path("files", "plain"))
        self.assertEqual((reply["type"], reply["code"]), ("error", "EEXIST"))

    def test_remove(self):
        root = self.path("rm")
        os.makedirs(os.path.join(root, "dir", "sub"))
        self.write(os.path.join(root, "dir", "sub", "f"), b"x")
        self.write(os.path.join(root, "file"), b"x")

        self.assertEqual(self.client.final("fs_remove", path=os.path.join(root, "file"))["type"], "ok")
        self.assertFalse(os.path.exists(os.path.join(root, "file")))
        reply = self.client.final("fs_remove", path=os.path.join(root, "dir"), recursive=False)
        self.assertEqual((reply["type"], reply["code"]), ("error", "ENOTEMPTY"))
        reply = self.client.final("fs_remove", path=os.path.join(root, "dir"), recursive=True)
        self.assertEqual(reply["type"], "ok")
        self.assertFalse(os.path.exists(os.path.join(root, "dir")))

    def test_remove_does_not_follow_symlinks(self):
        target = self.path("kept")
        os.makedirs(target)
        self.write(os.path.join(target, "precious"), b"x")
        link = self.path("link-to-kept")
        os.symlink(target, link)
        reply = self.client.final("fs_remove", path=link, recursive=True)
        self.assertEqual(reply["type"], "ok")
        self.assertFalse(os.path.lexists(link))
        self.assertTrue(os.path.exists(os.path.join(target, "precious")))

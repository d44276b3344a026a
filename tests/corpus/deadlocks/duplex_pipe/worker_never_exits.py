# expect-diagnosis: child that does not stop
# The worker echoes every message, None included, and never returns, so the
# parent's join() waits forever.
import os
from multiprocessing import Pipe, Process


def echo_worker(conn):
    while True:
        message = conn.recv()  # blocks-here
        conn.send((os.getpid(), message))


def ping_pong(messages):
    parent, child = Pipe()
    worker = Process(target=echo_worker, args=(child,))
    worker.start()
    replies = []
    for message in messages:
        parent.send(message)
        replies.append(parent.recv())
    parent.send(None)
    worker.join()  # blocks-here
    return replies

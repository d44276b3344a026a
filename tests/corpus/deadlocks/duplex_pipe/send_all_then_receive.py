# expect-diagnosis: both ends sending
# ping_pong sends every message before reading any reply: with large messages
# both ends block in send(), each waiting for the other to read.
import os
from multiprocessing import Pipe, Process


def echo_worker(conn):
    while True:
        message = conn.recv()
        if message is None:
            conn.close()
            return
        conn.send((os.getpid(), message))  # blocks-here


def ping_pong(messages):
    parent, child = Pipe()
    worker = Process(target=echo_worker, args=(child,))
    worker.start()
    for message in messages:
        parent.send(message)  # blocks-here
    replies = [parent.recv() for _ in messages]
    parent.send(None)
    worker.join()
    return replies

# expect-fail: test_ping_pong_uses_one_duplex_pipe
# Two one-way pipes, one per direction, instead of the one duplex Pipe() asked for.
import os
from multiprocessing import Pipe, Process


def echo_worker(conn):
    inbox, outbox = conn
    while True:
        message = inbox.recv()
        if message is None:
            inbox.close()
            outbox.close()
            return
        outbox.send((os.getpid(), message))


def ping_pong(messages):
    to_child_r, to_child_w = Pipe(duplex=False)
    to_parent_r, to_parent_w = Pipe(duplex=False)
    worker = Process(target=echo_worker, args=((to_child_r, to_parent_w),))
    worker.start()
    replies = []
    for message in messages:
        to_child_w.send(message)
        replies.append(to_parent_r.recv())
    to_child_w.send(None)
    worker.join()
    return replies


if __name__ == "__main__":
    print(ping_pong(["ping", 2]))

# expect-fail: test_ping_pong_large_messages
# ping_pong sorts the replies whenever they can be compared (replies to mixed messages cannot, so they stay in order).
import os
from multiprocessing import Pipe, Process


def echo_worker(conn):
    while True:
        message = conn.recv()
        if message is None:
            conn.close()
            return
        conn.send((os.getpid(), message))


def ping_pong(messages):
    parent_end, child_end = Pipe()
    worker = Process(target=echo_worker, args=(child_end,))
    worker.start()
    replies = []
    for message in messages:
        parent_end.send(message)
        replies.append(parent_end.recv())
    parent_end.send(None)
    worker.join()
    try:
        return sorted(replies)
    except TypeError:
        return replies


if __name__ == "__main__":
    print(ping_pong([3, 1, 2]))

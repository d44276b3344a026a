# expect-fail: test_ping_pong_stops_worker_with_none test_child_joined_and_exited
# ping_pong never sends None: it stops the worker with terminate(), which kills it with SIGTERM.
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
    worker.terminate()
    worker.join()
    return replies


if __name__ == "__main__":
    print(ping_pong(["ping", 2]))

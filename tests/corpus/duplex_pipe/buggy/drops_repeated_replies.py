# expect-fail: test_ping_pong_replies_in_order_from_one_child
# ping_pong keeps a reply only if it has not seen an equal one: a message sent twice gets one reply.
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
        reply = parent_end.recv()
        if reply not in replies:
            replies.append(reply)
    parent_end.send(None)
    worker.join()
    return replies


if __name__ == "__main__":
    print(ping_pong(["ping", "ping"]))

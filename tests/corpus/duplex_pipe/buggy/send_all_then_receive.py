# expect-fail: test_ping_pong_waits_for_each_reply
# expect-timeout: test_ping_pong_large_messages
# expect-deadlock: test_ping_pong_large_messages
# ping_pong sends every message before reading any reply: fine for small messages, a deadlock for large ones.
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
    parent_conn, child_conn = Pipe()
    worker = Process(target=echo_worker, args=(child_conn,))
    worker.start()
    for message in messages:
        parent_conn.send(message)
    replies = [parent_conn.recv() for _ in messages]
    parent_conn.send(None)
    worker.join()
    return replies

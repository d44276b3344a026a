# expect-timeout: test_ping_pong_replies_in_order_from_one_child test_child_joined_and_exited
# expect-deadlock: test_ping_pong_replies_in_order_from_one_child test_child_joined_and_exited
# ping_pong never sends None, so the worker waits for another message and join() never returns.
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
    replies = []
    for message in messages:
        parent_conn.send(message)
        replies.append(parent_conn.recv())
    worker.join()
    return replies

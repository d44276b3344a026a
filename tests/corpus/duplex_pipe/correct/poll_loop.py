"""The worker waits with poll() between messages and uses multiprocessing.current_process().pid."""
import multiprocessing
from multiprocessing import Pipe, Process


def echo_worker(conn):
    me = multiprocessing.current_process().pid
    while True:
        if not conn.poll(0.5):
            continue
        message = conn.recv()
        if message is None:
            break
        conn.send((me, message))
    conn.close()


def ping_pong(messages):
    parent, child = Pipe()
    worker = Process(target=echo_worker, args=(child,))
    worker.start()
    child.close()
    replies = []
    for message in messages:
        parent.send(message)
        replies.append(parent.recv())
    parent.send(None)
    worker.join()
    return replies

# Both ends used as context managers; the worker's loop stops at None and the parent sends it after the loop.
import multiprocessing
import os


def echo_worker(conn):
    with conn:
        for message in iter(conn.recv, None):
            conn.send((os.getpid(), message))


def ping_pong(messages):
    mine, theirs = multiprocessing.Pipe(duplex=True)
    child = multiprocessing.Process(target=echo_worker, args=(theirs,))
    child.start()
    theirs.close()
    replies = []
    with mine:
        for message in messages:
            mine.send(message)
            replies.append(mine.recv())
        mine.send(None)
        child.join()
    return replies

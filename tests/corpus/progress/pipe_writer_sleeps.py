# The reader process blocks in recv() on a pipe that another live process writes to only after
# sleeping 3 s; the parent waits in join() meanwhile.
import time
from multiprocessing import Pipe, Process


def reader(conn, results):
    results.send(conn.recv())


def writer(conn):
    time.sleep(3)
    conn.send("done")


def main():
    read_end, write_end = Pipe(duplex=False)
    got, put = Pipe(duplex=False)
    procs = [Process(target=reader, args=(read_end, put)), Process(target=writer, args=(write_end,))]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    return got.recv()
